//! The test server as a process of its own, for benchmarks that compare
//! clients in other processes (luaco, Node.js) against the same server.
//! Prints its URL, then serves until stdin closes.
//!
//! Run: `cargo run --release -p luaco --example http_server`

use std::io::{Read, Write};

use luaco::io::testing::TestServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::start()?;
    println!("{}", server.url());
    std::io::stdout().flush()?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}
