//! ScriptValue: Lua ↔ Rust conversion and serde, both ways.

use std::collections::BTreeMap;

use luaco_core::ScriptValue;
use proptest::prelude::*;

fn value() -> impl Strategy<Value = ScriptValue> {
    let leaf = prop_oneof![
        Just(ScriptValue::Nil),
        any::<bool>().prop_map(ScriptValue::Boolean),
        any::<i64>().prop_map(ScriptValue::Integer),
        (-1e12f64..1e12).prop_map(ScriptValue::Number),
        "[a-z0-9 ]{0,12}".prop_map(ScriptValue::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            // Arrays never hold nil: a Lua table cannot tell a trailing nil apart.
            prop::collection::vec(
                inner
                    .clone()
                    .prop_filter("no nil", |v| *v != ScriptValue::Nil),
                1..6
            )
            .prop_map(ScriptValue::Array),
            prop::collection::btree_map(
                "[a-z]{1,6}",
                inner.prop_filter("no nil", |v| *v != ScriptValue::Nil),
                0..6
            )
            .prop_map(ScriptValue::Map),
        ]
    })
}

proptest! {
    #[test]
    fn lua_round_trip(v in value()) {
        let lua = mlua::Lua::new();
        let lv = v.to_lua_value(&lua).unwrap();
        let back = ScriptValue::from_lua_value(&lv).unwrap();
        // An empty map and an empty array are the same empty Lua table.
        prop_assert_eq!(back, v);
    }

    #[test]
    fn serde_round_trip(v in value()) {
        let json = serde_json::to_string(&v).unwrap();
        let back: ScriptValue = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, v);
    }
}

#[test]
fn lua_tables_follow_the_array_rule() {
    let lua = mlua::Lua::new();
    let conv = |src: &str| {
        let v: mlua::Value = lua.load(src).eval().unwrap();
        ScriptValue::from_lua_value(&v)
    };
    assert_eq!(
        conv("return {10, 20}").unwrap(),
        ScriptValue::Array(vec![10.into(), 20.into()])
    );
    assert_eq!(
        conv("return {}").unwrap(),
        ScriptValue::Map(BTreeMap::new())
    );
    let sparse = conv("return {[1] = 'a', [3] = 'c'}").unwrap();
    assert_eq!(sparse.get("3"), Some(&ScriptValue::from("c")));
    assert!(matches!(
        conv("return {x = 1, 2}").unwrap(),
        ScriptValue::Map(_)
    ));
    assert_eq!(
        conv("return '\\255'").unwrap(),
        ScriptValue::Bytes(vec![255])
    );
}

#[test]
fn unconvertible_values_are_errors_not_panics() {
    let lua = mlua::Lua::new();
    for src in [
        "return function() end",
        "return coroutine.create(function() end)",
        "return {f = print}",
        "local t = {} t.self = t return t",
        "return {[{}] = 1}",
    ] {
        let v: mlua::Value = lua.load(src).eval().unwrap();
        assert!(ScriptValue::from_lua_value(&v).is_err(), "{src}");
    }
}

#[test]
fn sparse_integer_keys_are_a_map_not_a_panic() {
    let lua = mlua::Lua::new();
    for src in [
        "return {[0] = 'a', [2] = 'b'}",
        "return {[-1] = 'a', [1] = 'b'}",
        "return {[2] = 'b', [3] = 'c'}",
        "return {[1] = 'a', [1 << 40] = 'b'}",
    ] {
        let v: mlua::Value = lua.load(src).eval().unwrap();
        match ScriptValue::from_lua_value(&v).unwrap() {
            ScriptValue::Map(m) => assert_eq!(m.len(), 2, "{src}"),
            other => panic!("{src}: {other:?}"),
        }
    }
}
