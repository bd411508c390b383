//! The file API on real files in a temp dir and on the in-memory backend:
//! one behavioural script, two backends; and confinement to a root.

mod common;

use std::rc::Rc;

use luaco_io::{FileSystem, MemFs, RealFs};

#[test]
fn real_files_in_a_temp_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = common::env(None, Some(Rc::new(RealFs::new())));
    env.lua
        .globals()
        .set("DIR", dir.path().to_str().unwrap())
        .unwrap();
    env.run_ok("fs.lua", &common::fixture("fs.lua"));
    // What the script wrote is really on disk.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b.txt")).unwrap(),
        "b"
    );
    assert!(!dir.path().join("a.txt").exists());
}

#[test]
fn the_same_behaviour_in_memory() {
    let mem = Rc::new(MemFs::new());
    mem.create_dir("/work");
    let env = common::env(None, Some(mem.clone() as Rc<dyn FileSystem>));
    env.lua.globals().set("DIR", "/work").unwrap();
    env.run_ok("fs.lua", &common::fixture("fs.lua"));
    let data = futures_lite::future::block_on(mem.read(b"/work/b.txt", usize::MAX)).unwrap();
    assert_eq!(data, b"b");
}

#[test]
fn a_confined_fs_refuses_every_escape() {
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(outer.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outer.path(), root.join("link")).unwrap();
    let env = common::env(None, Some(Rc::new(RealFs::confined(&root).unwrap())));
    env.lua
        .globals()
        .set("OUTSIDE", outer.path().join("secret.txt").to_str().unwrap())
        .unwrap();
    env.run_ok(
        "confined",
        r#"
        await(fs.write("inside.txt", "fine"))
        assert(await(fs.read("inside.txt")) == "fine")
        assert(await(fs.read("./sub/../inside.txt")) == "fine")
        for _, path in ipairs({ "../secret.txt", "link/secret.txt", OUTSIDE, "/etc/passwd", "a/../../secret.txt" }) do
          for _, op in ipairs({ "read", "exists", "list", "remove", "stat", "mkdir" }) do
            local ok, e = pcall(await, fs[op](path))
            assert(not ok and e.kind == "permission", op .. " " .. path .. ": " .. tostring(e))
          end
          for _, op in ipairs({ "write", "append" }) do
            local ok, e = pcall(await, fs[op](path, "x"))
            assert(not ok and e.kind == "permission", op .. " " .. path)
          end
          local ok, e = pcall(await, fs.rename("inside.txt", path))
          assert(not ok and e.kind == "permission", "rename to " .. path)
          local ok2, e2 = pcall(await, fs.rename(path, "stolen.txt"))
          assert(not ok2 and e2.kind == "permission", "rename from " .. path)
        end
        return "ok"
    "#,
    );
    assert_eq!(
        std::fs::read_to_string(outer.path().join("secret.txt")).unwrap(),
        "secret"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("inside.txt")).unwrap(),
        "fine"
    );
}

#[test]
fn no_file_system_means_permission_denied() {
    let env = common::env(None, None);
    env.run_ok(
        "denied",
        r#"
        local ok, e = pcall(await, fs.read("/etc/hostname"))
        assert(not ok and e.kind == "permission", tostring(e))
        return "ok"
    "#,
    );
}

#[test]
fn more_operations_on_real_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = common::env(None, Some(Rc::new(RealFs::new())));
    let d = dir.path().to_str().unwrap().to_owned();
    env.lua.globals().set("DIR", d).unwrap();
    env.lua.globals().set("REAL", true).unwrap();
    env.run_ok("fs_more.lua", &common::fixture("fs_more.lua"));
}

#[test]
fn more_operations_in_memory() {
    let mem = Rc::new(MemFs::new());
    mem.create_dir("/work");
    let env = common::env(None, Some(mem as Rc<dyn FileSystem>));
    env.lua.globals().set("DIR", "/work").unwrap();
    env.lua.globals().set("REAL", false).unwrap();
    env.run_ok("fs_more.lua", &common::fixture("fs_more.lua"));
}

#[test]
fn names_that_are_not_utf8_come_back_byte_exact() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(dir.path().join(name), "latin-1 name").unwrap();
    let env = common::env(None, Some(Rc::new(RealFs::new())));
    env.lua
        .globals()
        .set("DIR", dir.path().to_str().unwrap())
        .unwrap();
    env.run_ok(
        "bytes",
        r#"
        local names = await(fs.list(DIR))
        assert(#names == 1 and names[1] == "caf\xe9.txt", "listed exactly: " .. names[1])
        assert(await(fs.read(DIR .. "/" .. names[1])) == "latin-1 name")
        assert(await(fs.stat(DIR .. "/caf\xe9.txt")).size == 12)
        local ok, e = pcall(fs.read, DIR .. "/a\0b")
        assert(not ok and e.kind == "type", "a NUL byte cannot be a path")
        return "ok"
    "#,
    );
}

#[test]
fn a_read_past_the_cap_is_a_limit_error_not_an_allocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 4096]).unwrap();
    let lua = luaco_core::StateBuilder::new().build().expect("lua");
    let sched = luaco_sched::Scheduler::new(&lua, Default::default()).expect("sched");
    luaco_io::install(
        sched.engine(),
        &lua,
        luaco_io::IoConfig {
            fs: Some(Rc::new(RealFs::new())),
            fs_limits: luaco_io::FsLimits { max_read: 1000 },
            ..luaco_io::IoConfig::default()
        },
    )
    .unwrap();
    lua.globals().set("luaco", sched.engine().api()).unwrap();
    lua.globals()
        .set("BIG", dir.path().join("big.bin").to_str().unwrap())
        .unwrap();
    let f = lua
        .load(
            r#"
        local ok, e = pcall(luaco.await, luaco.fs.read(BIG))
        assert(not ok and e.kind == "limit", tostring(e))
        assert(e.message:find("1000 bytes", 1, true), e.message)
        return "ok"
    "#,
        )
        .into_function()
        .unwrap();
    let p = sched
        .engine()
        .spawn(f, (), &luaco_core::ScriptContext::new("cap"))
        .unwrap();
    sched.run_until(|| !p.is_pending(), None);
    match p.outcome() {
        Some(luaco_core::Outcome::Resolved(v)) => assert_eq!(v.to_string().unwrap(), "ok"),
        other => panic!(
            "{other:?} {:?}",
            p.outcome().map(|o| match o {
                luaco_core::Outcome::Rejected(r) => sched.engine().script_error(&r).message,
                _ => String::new(),
            })
        ),
    }
}

#[test]
fn a_symlink_to_a_file_outside_that_does_not_exist_yet_is_refused() {
    // Only existing targets used to be resolved: a dangling link let
    // write and append create the outside file.
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    let target = outer.path().join("created.txt");
    std::os::unix::fs::symlink(&target, root.join("dangling")).unwrap();
    // Relative, through a directory, and a chain of two links.
    std::os::unix::fs::symlink("../../created2.txt", root.join("sub/rel")).unwrap();
    std::os::unix::fs::symlink(root.join("dangling"), root.join("chain")).unwrap();
    // A dangling link that stays inside is fine.
    std::os::unix::fs::symlink(root.join("new.txt"), root.join("inner")).unwrap();
    let env = common::env(None, Some(Rc::new(RealFs::confined(&root).unwrap())));
    env.run_ok(
        "dangling",
        r#"
        for _, path in ipairs({ "dangling", "sub/rel", "chain" }) do
          for _, op in ipairs({ "write", "append" }) do
            local ok, e = pcall(await, fs[op](path, "x"))
            assert(not ok and e.kind == "permission", op .. " " .. path .. ": " .. tostring(e))
          end
        end
        await(fs.write("inner", "in"))
        assert(await(fs.read("new.txt")) == "in")
        return "ok"
    "#,
    );
    assert!(!target.exists());
    assert!(!outer.path().join("created2.txt").exists());
}
