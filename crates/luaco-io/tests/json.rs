//! JSON: the precise rules of docs/reference.md, round trips as properties, and
//! hostile input that must give errors, never a crash.

mod common;

use proptest::prelude::*;

#[test]
fn encoding_and_decoding_rules() {
    let env = common::env(None, None);
    env.run_ok(
        "json",
        r#"
        assert(json.encode({ b = 1, a = 2, c = { 3, 4 } }) == '{"a":2,"b":1,"c":[3,4]}')
        assert(json.encode({}) == "{}")
        assert(json.encode(json.array({})) == "[]")
        assert(json.encode(json.array()) == "[]")
        assert(json.encode({ [1] = "a", [3] = "c" }) == '{"1":"a","3":"c"}')
        assert(json.encode(1) == "1" and json.encode(1.5) == "1.5" and json.encode(2.0) == "2.0")
        assert(json.encode("q\"\n\u{e9}") == '"q\\"\\n\u{e9}"')
        assert(json.encode(json.null) == "null" and json.encode(nil) == "null")
        assert(json.encode({ x = json.null }) == '{"x":null}')
        assert(json.encode(true) == "true")

        local v = json.decode('{"i": 1, "f": 1.0, "big": 9007199254740993, "n": null, "a": [], "s": "\\u00e9"}')
        assert(math.type(v.i) == "integer" and math.type(v.f) == "float")
        assert(v.big == 9007199254740993, "integers stay exact")
        assert(v.n == json.null)
        assert(json.encode(v.a) == "[]", "decoded arrays stay arrays")
        assert(v.s == "\u{e9}")
        assert(json_parse == json.decode)

        for _, bad in ipairs({ "{", "[1,]", "nul", '{"a" 1}', "1 2", "" }) do
          local ok, e = pcall(json.decode, bad)
          assert(not ok and e.kind == "json", bad)
          assert(e.message:find("line %d+ column %d+"), e.message)
        end
        local ok, e = pcall(json.decode, "[1,\n  oops]")
        assert(e.message:find("line 2 column 3", 1, true), e.message)

        local cyc = {}; cyc.self = cyc
        for _, bad in ipairs({ cyc, { f = print }, { 0/0 }, { [{}] = 1 }, coroutine.create(print) }) do
          local ok, e = pcall(json.encode, bad)
          assert(not ok and e.kind == "type", tostring(e))
        end
        local okd, ed = pcall(json.decode, 42)
        assert(not okd and ed.kind == "type")
        return "ok"
    "#,
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let env = common::env(None, None);
    env.run_ok(
        "deep",
        r#"
        local deep = string.rep("[", 100000) .. string.rep("]", 100000)
        local ok, e = pcall(json.decode, deep)
        assert(not ok and e.kind == "json", tostring(e))
        local t = {}
        local cur = t
        for i = 1, 100000 do cur[1] = {}; cur = cur[1] end
        local ok2, e2 = pcall(json.encode, t)
        assert(not ok2 and e2.kind == "type", tostring(e2))
        return "ok"
    "#,
    );
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        (-1e15f64..1e15).prop_map(J::from),
        "[ -~\u{e9}\u{4e2d}]{0,10}".prop_map(J::String),
    ];
    leaf.prop_recursive(5, 80, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
            prop::collection::btree_map("[a-z]{0,5}", inner, 0..6)
                .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn decode_then_encode_gives_the_canonical_text_back(v in json_value()) {
        let env = common::env(None, None);
        let text = serde_json::to_string(&v).unwrap(); // serde_json sorts keys here too
        let json: mlua::Table = env.sched.engine().api().get("json").unwrap();
        let decode: mlua::Function = json.get("decode").unwrap();
        let encode: mlua::Function = json.get("encode").unwrap();
        let lua_value: mlua::Value = decode.call(text.as_str()).unwrap();
        let again: String = encode.call(lua_value).unwrap();
        prop_assert_eq!(&again, &text);
    }
}

#[test]
fn keys_that_collide_as_strings_are_refused() {
    let env = common::env(None, None);
    env.run_ok(
        "collide",
        r#"
        local ok, e = pcall(json.encode, { [1] = "a", ["1"] = "b" })
        assert(not ok and e.kind == "type" and e.message:find('"1"', 1, true), tostring(e))
        local ok2, e2 = pcall(json.encode, { nested = { [2] = "x", ["2"] = "y", z = 1 } })
        assert(not ok2 and e2.kind == "type")
        assert(json.encode({ [1] = "a", [3] = "c" }) == '{"1":"a","3":"c"}')
        return "ok"
    "#,
    );
}

#[test]
fn encode_and_decode_share_one_depth_limit() {
    let env = common::env(None, None);
    env.run_ok(
        "depth",
        r#"
        local function nest(d) local t = {} ; local cur = t
          for _ = 2, d do local n = {} ; cur[1] = n ; cur = n end
          return t
        end
        -- the deepest document encode accepts, decode accepts too
        local deepest
        for d = 100, 200 do
          local ok, text = pcall(json.encode, nest(d))
          if not ok then break end
          deepest = text
          local ok2, e2 = pcall(json.decode, text)
          assert(ok2, "encode made depth " .. d .. " but decode refused it: " .. tostring(e2))
        end
        assert(deepest, "some depth encodes")
        -- one level more is refused by both
        local extra = "[" .. deepest .. "]"
        local okd = pcall(json.decode, extra)
        assert(not okd, "decode refuses one level past the limit")
        return "ok"
    "#,
    );
}
