-- args: --timeout-ms 300
-- exit: 3 timeout
await(sleep(60000))
