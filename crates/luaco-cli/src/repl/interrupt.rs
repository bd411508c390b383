//! Ctrl-C while a line runs: a SIGINT handler raises a flag, which the
//! REPL's loop reads between turns and a count hook reads inside running
//! Lua code.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use luaco::mlua::{self, HookTriggers, VmState};

/// VM instructions between two looks at the Ctrl-C flag inside running Lua.
const HOOK_EVERY: u32 = 1000;

/// Makes running Lua code notice Ctrl-C: while the flag is up, a count
/// hook raises `interrupted` in the code it finds running, so a loop that
/// never awaits stops as one that awaits does (the line's task fails).
///
/// The count hook makes Lua code run slower (about 2x for a tight loop,
/// as with the limits' hook: see BENCHMARKS.md), an interactive
/// session's fair price.
pub(super) fn install_hook(lua: &mlua::Lua, flag: Arc<AtomicBool>) -> mlua::Result<()> {
    let interrupt = Interrupt {
        flag,
        main: lua.current_thread().to_pointer().addr(),
    };
    // A global hook reaches every coroutine made after it: the engine makes
    // its workers lazily, so that is all of them.
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |lua, _| interrupt.watch(lua),
    )
}

/// What the Ctrl-C hook needs.
///
/// It never raises in the main thread: the engine's own Lua code (the
/// scheduler's turn, its bookkeeping) runs there and must not fail
/// half-way. Scripts run in task coroutines, or in coroutines of their
/// own inside those, where the error unwinds to the task like any other.
#[derive(Clone)]
struct Interrupt {
    /// Up from Ctrl-C until the REPL has dealt with the line.
    flag: Arc<AtomicBool>,
    /// The main thread's address.
    main: usize,
}

impl Interrupt {
    /// Every [`HOOK_EVERY`] instructions: raise if the flag is up, and
    /// go on raising at each instruction of this thread, so a `pcall`
    /// that caught the error (`while true do pcall(busy) end`) is left
    /// at its very next instruction too.
    fn watch(&self, lua: &mlua::Lua) -> mlua::Result<VmState> {
        if !self.flag.load(Ordering::Relaxed) {
            return Ok(VmState::Continue);
        }
        let thread = lua.current_thread();
        if thread.to_pointer().addr() == self.main {
            return Ok(VmState::Continue);
        }
        let again = self.clone();
        thread.set_hook(
            HookTriggers::new().every_nth_instruction(1),
            move |lua, _| again.insist(lua),
        )?;
        Err(interrupted())
    }

    /// At each instruction of an interrupted thread: raise until the REPL
    /// lowers the flag, then look only now and then again (a thread that
    /// outlives its interruption keeps its speed).
    fn insist(&self, lua: &mlua::Lua) -> mlua::Result<VmState> {
        if self.flag.load(Ordering::Relaxed) {
            return Err(interrupted());
        }
        let again = self.clone();
        lua.current_thread().set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |lua, _| again.watch(lua),
        )?;
        Ok(VmState::Continue)
    }
}

/// The error the hook raises.
fn interrupted() -> mlua::Error {
    mlua::Error::runtime("interrupted")
}

/// SIGINT raises the flag; a second one before the REPL took down the
/// first ends the process with 130, as the shell's Ctrl-C would: the way
/// out of code stuck where no hook runs (a long C call such as a huge
/// `string.rep`, an `xpcall` message handler that loops). At the prompt the terminal is raw, so Ctrl-C
/// is a key for the editor, not a signal.
pub(super) fn catch_sigint(interrupted: &Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::SIGINT;
    // The order matters: the shutdown looks at the flag before it is set.
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, interrupted.clone())?;
    signal_hook::flag::register(SIGINT, interrupted.clone())?;
    Ok(())
}
