//! Measures the cost of crossing between Rust and Lua on this machine.
use std::time::Instant;

fn main() -> mlua::Result<()> {
    let lua = mlua::Lua::new();
    let f: mlua::Function = lua.load("return function(x) return x, 1, 2 end").eval()?;
    let n = 1_000_000;
    let t = Instant::now();
    for i in 0..n {
        let _: (i64, i64, i64) = f.call(i)?;
    }
    println!("rust->lua call: {:?}", t.elapsed() / n as u32);
    let g = lua.create_function(|_, x: i64| Ok(x))?;
    lua.globals().set("g", g)?;
    let h: mlua::Function = lua
        .load("return function(n) for i = 1, n do g(i) end end")
        .eval()?;
    let t = Instant::now();
    h.call::<()>(n)?;
    println!("lua->rust call: {:?}", t.elapsed() / n as u32);
    Ok(())
}
