//! Property: `all` over any schedule of resolutions and rejections equals
//! the sequential model: the values in list order if every input resolves,
//! else the first rejection in time.

mod common;

use luaco_core::{Outcome, Promise};
use mlua::{Function, Table, Value};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Item {
    Plain(i64),
    Resolves(i64),
    Rejects(i64),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        any::<i64>().prop_map(Item::Plain),
        any::<i64>().prop_map(Item::Resolves),
        any::<i64>().prop_map(Item::Rejects),
    ]
}

proptest! {
    #[test]
    fn all_matches_the_sequential_model(
        items in prop::collection::vec(item(), 0..10),
        order_seed in prop::collection::vec(any::<u32>(), 10),
    ) {
        let (lua, engine) = common::engine();
        let list = lua.create_table().unwrap();
        let mut pending: Vec<(usize, Promise)> = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let v = match it {
                Item::Plain(v) => Value::Integer(*v),
                _ => {
                    let p = engine.new_promise().unwrap();
                    pending.push((i, p.clone()));
                    p.to_lua().unwrap()
                }
            };
            list.raw_set(i + 1, v).unwrap();
        }
        list.raw_set("n", items.len()).unwrap();
        let all: Function = engine.api().get("all").unwrap();
        let result = engine.promise_from_value(&all.call::<Value>(list).unwrap()).unwrap();
        result.set_handled();

        // Settle the pending inputs in a random order.
        let mut schedule: Vec<usize> = (0..pending.len()).collect();
        schedule.sort_by_key(|&k| order_seed[k % order_seed.len()].wrapping_mul(k as u32 + 7));
        let mut first_rejection = None;
        for &k in &schedule {
            let (i, p) = &pending[k];
            match items[*i] {
                Item::Resolves(v) => engine.resolve(p, Value::Integer(v)).unwrap(),
                Item::Rejects(v) => {
                    if first_rejection.is_none() { first_rejection = Some(v); }
                    engine.reject(p, Value::Integer(v)).unwrap();
                }
                Item::Plain(_) => unreachable!(),
            }
        }
        match (first_rejection, result.outcome()) {
            (Some(v), Some(Outcome::Rejected(Value::Integer(r)))) => prop_assert_eq!(r, v),
            (None, Some(Outcome::Resolved(Value::Table(t)))) => {
                let t: Table = t;
                prop_assert_eq!(t.raw_get::<usize>("n").unwrap(), items.len());
                for (i, it) in items.iter().enumerate() {
                    let want = match it { Item::Plain(v) | Item::Resolves(v) => *v, Item::Rejects(_) => unreachable!() };
                    prop_assert_eq!(t.raw_get::<i64>(i + 1).unwrap(), want);
                }
            }
            (want, got) => prop_assert!(false, "model {:?}, got {:?}", want, got),
        }
    }
}
