//! The lifecycle observer: every point of a task's life is reported, in
//! order, with its data; an observer may call back into the runtime.

use std::cell::RefCell;
use std::rc::Rc;

use luaco::{Config, Lifecycle, Observer, Runtime, ScriptContext, ScriptValue, TaskInfo};

#[derive(Default)]
struct Recorder {
    events: RefCell<Vec<(Lifecycle, u64, String, u64)>>,
}

impl Observer for Recorder {
    fn lifecycle(&self, event: Lifecycle, task: &TaskInfo<'_>) {
        self.events.borrow_mut().push((
            event,
            task.thread_id,
            task.script_name.to_owned(),
            task.yield_count,
        ));
    }
}

#[test]
fn each_task_reports_its_life_in_order() -> luaco::Result<()> {
    let rt = Runtime::new(Config::default())?;
    let rec = Rc::new(Recorder::default());
    rt.add_observer(rec.clone());
    let p = rt.create_async(
        r#"
        local ok = async(function() await(sleep(1)); return 1 end)
        local bad = async(function() error("x") end)
        local long = async(function() await(sleep(10000)) end)
        await(sleep(5))
        long:cancel()
        pcall(await, bad)
        return await(ok)
    "#,
        ScriptContext::new("life"),
    )?;
    assert_eq!(rt.block_on(&p)?, ScriptValue::Integer(1));
    let events = rec.events.borrow();
    let of =
        |id: u64| -> Vec<Lifecycle> { events.iter().filter(|e| e.1 == id).map(|e| e.0).collect() };
    use Lifecycle::*;
    // Tasks are numbered in spawn order: main, ok, bad, long.
    let main = events[0].1;
    assert_eq!(
        of(main + 1),
        vec![Created, Started, Yielded, Resumed, Completed]
    );
    assert_eq!(of(main + 2), vec![Created, Started, Failed]);
    assert_eq!(of(main + 3), vec![Created, Started, Yielded, Cancelled]);
    assert_eq!(of(main).first(), Some(&Created));
    assert_eq!(of(main).last(), Some(&Completed));
    assert!(
        events.iter().all(|e| e.2 == "life"),
        "tasks inherit the script name"
    );
    let completed = events
        .iter()
        .find(|e| e.1 == main + 1 && e.0 == Completed)
        .expect("completed");
    assert_eq!(completed.3, 1, "one yield before completing");
    Ok(())
}

/// Spawns a task from inside the callback: must not trip over engine state.
struct Reentrant {
    rt: RefCell<Option<Rc<Runtime>>>,
    spawned: RefCell<usize>,
}

impl Observer for Reentrant {
    fn lifecycle(&self, event: Lifecycle, _task: &TaskInfo<'_>) {
        if event == Lifecycle::Cancelled || event == Lifecycle::Created {
            if let Some(rt) = self.rt.borrow().as_ref() {
                if *self.spawned.borrow() < 3 {
                    *self.spawned.borrow_mut() += 1;
                    let _ = rt.create_async("return 1", ScriptContext::new("inner"));
                }
            }
        }
    }
}

#[test]
fn an_observer_may_call_back_into_the_runtime() -> luaco::Result<()> {
    let rt = Rc::new(Runtime::new(Config::default())?);
    let obs = Rc::new(Reentrant {
        rt: RefCell::new(Some(rt.clone())),
        spawned: RefCell::new(0),
    });
    rt.add_observer(obs.clone());
    let p = rt.create_async(
        "local t = async(function() await(sleep(1000)) end) await(sleep(1)) t:cancel() return 'done'",
        ScriptContext::new("outer"),
    )?;
    assert_eq!(rt.block_on(&p)?, ScriptValue::from("done"));
    assert_eq!(*obs.spawned.borrow(), 3);
    obs.rt.borrow_mut().take();
    Ok(())
}
