//! luaco inside a tokio application. A luaco `Runtime` is single-threaded
//! and runs its own loop (async-io, no tokio), so it lives on a thread of
//! its own; tokio tasks send it scripts over a channel and await the
//! results through oneshot channels. Copy `LuaWorker` as it is.

use std::sync::mpsc;
use std::time::Duration;

use luaco::prelude::*;
use tokio::sync::oneshot;

/// A script to run and where its result goes.
struct Job {
    name: String,
    source: String,
    reply: oneshot::Sender<Result<ScriptValue, String>>,
}

/// The handle tokio code holds: cheap to clone, `Send`.
#[derive(Clone)]
struct LuaWorker {
    jobs: mpsc::Sender<Job>,
}

impl LuaWorker {
    /// Starts the luaco thread.
    fn start() -> LuaWorker {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            if let Err(e) = serve(inbox) {
                eprintln!("luaco worker stopped: {e}");
            }
        });
        LuaWorker { jobs }
    }

    /// Runs `source` as a script on the luaco thread; its value or error.
    async fn eval(&self, name: &str, source: &str) -> Result<ScriptValue, String> {
        let (reply, result) = oneshot::channel();
        let job = Job {
            name: name.to_owned(),
            source: source.to_owned(),
            reply,
        };
        self.jobs
            .send(job)
            .map_err(|_| "the luaco thread is gone".to_owned())?;
        result
            .await
            .map_err(|_| "the luaco thread dropped the job".to_owned())?
    }
}

/// The luaco thread: takes jobs, pumps the loop, answers settled scripts.
fn serve(inbox: mpsc::Receiver<Job>) -> Result<(), luaco::Error> {
    let rt = Runtime::new(Config::default())?;
    let mut running: Vec<(PromiseHandle, oneshot::Sender<Result<ScriptValue, String>>)> =
        Vec::new();
    loop {
        // With nothing running, sleep until a job arrives; else just look.
        let next = if running.is_empty() {
            match inbox.recv() {
                Ok(job) => Some(job),
                Err(_) => return Ok(()), // every LuaWorker was dropped
            }
        } else {
            inbox.try_recv().ok()
        };
        if let Some(job) = next {
            match rt.create_async(&job.source, ScriptContext::new(job.name)) {
                Ok(p) => running.push((p, job.reply)),
                Err(e) => {
                    let _ = job.reply.send(Err(e.to_string()));
                }
            }
            continue;
        }
        rt.pump(Duration::from_millis(2))?;
        // Answer what settled; a pending script waits for the next round.
        let mut still = Vec::new();
        for (p, reply) in running.drain(..) {
            if p.status() == PromiseStatus::Pending {
                still.push((p, reply));
            } else {
                let _ = reply.send(p.result().map_err(|e| e.to_string()));
            }
        }
        running = still;
        if !running.is_empty() && rt.scheduler().is_idle() {
            // Nothing is left that could settle them: a deadlock.
            for (_, reply) in running.drain(..) {
                let _ = reply.send(Err(
                    "stalled: the script waits on something nothing will settle".into(),
                ));
            }
            continue;
        }
        if !running.is_empty() && rt.scheduler().ready_count() == 0 {
            // Only timers or I/O pending: don't spin.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let lua = LuaWorker::start();
    // Many tokio tasks use the one luaco thread at once.
    let mut handles = Vec::new();
    for i in 1..=5 {
        let lua = lua.clone();
        handles.push(tokio::spawn(async move {
            let source = format!("await(sleep({})) return {i} * 10", 20 - i * 3);
            lua.eval(&format!("job{i}"), &source).await
        }));
    }
    let mut total = 0;
    for h in handles {
        match h.await.map_err(|e| e.to_string())?? {
            ScriptValue::Integer(n) => total += n,
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    // tokio's own timers run beside it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let error = lua.eval("broken", "error('from Lua')").await;
    let stalled = lua.eval("stuck", "await(sync.channel():recv())").await;
    println!("a script that waits for ever: {stalled:?}");
    if stalled.is_ok() {
        return Err("a stalled script was answered with a value".into());
    }
    println!("total {total}; a failing script: {error:?}");
    if total != 150 || error.is_ok() {
        return Err("wrong results".into());
    }
    Ok(())
}
