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
    let data = futures_lite::future::block_on(mem.read("/work/b.txt")).unwrap();
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
          for _, op in ipairs({ "read", "exists", "list", "remove" }) do
            local ok, e = pcall(await, fs[op](path))
            assert(not ok and e.kind == "permission", op .. " " .. path .. ": " .. tostring(e))
          end
          local ok, e = pcall(await, fs.write(path, "x"))
          assert(not ok and e.kind == "permission", "write " .. path)
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
