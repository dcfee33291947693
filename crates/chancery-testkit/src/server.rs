//! Child processes under supervision (servers, and programs run to their end): their output
//! (standard output and error together) kept line by line, waited on as it comes (a server is
//! waited for on the line that says it listens, never on a sleep), and the process SIGKILLed when
//! its owner drops it, panics, or is itself killed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{Error, PATIENCE, Result};

/// Runs a program under a shell that SIGKILLs it when the owner closes the shell's standard input,
/// however the owner ends (a drop, a panic, or the test binary itself being killed), and says
/// when it exits. The program's standard output and error come back on the shell's standard
/// output. The first argument names a directory to delete once the owner is gone (empty: none);
/// with one, the watcher outlives the program, since only the owner's end may delete it.
const SUPERVISOR: &str = r#"
remove=$1
shift
exec 3<&0
"$@" </dev/null 3<&- 2>&1 &
child=$!
trap '' PIPE
echo "@@child-pid $child"
( read -r _ <&3; kill -KILL "$child" 2>/dev/null; [ -z "$remove" ] || rm -rf -- "$remove" ) &
watcher=$!
wait "$child"
echo "@@child-exit $?"
[ -n "$remove" ] || kill "$watcher" 2>/dev/null
"#;

const PID_LINE: &str = "@@child-pid ";
const EXIT_LINE: &str = "@@child-exit ";
/// How many of the last lines failure messages show.
const TAIL: usize = 80;

/// What the process has said so far, and whether it has exited.
#[derive(Default)]
struct Seen {
    lines: Vec<String>,
    pid: Option<u32>,
    /// `Some` once the process is gone: its exit code, when the supervisor could tell it.
    exit: Option<Option<i32>>,
}

impl Seen {
    fn why_gone(&self) -> String {
        match self.exit {
            Some(Some(code)) => format!("exit status {code}"),
            Some(None) => "its supervisor ended".into(),
            None => "it still runs".into(),
        }
    }
}

struct Output {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A child process under supervision, SIGKILLed when dropped.
pub struct Process {
    name: String,
    pid: u32,
    shell: Child,
    /// Closing it makes the supervisor SIGKILL the process.
    lifeline: Option<ChildStdin>,
    output: Arc<Output>,
}

impl Process {
    /// Starts `command` (its program, arguments, environment and directory; not its standard
    /// streams, which the supervisor owns) under supervision. `name` names it in messages.
    pub fn spawn(name: &str, command: &Command) -> Result<Process> {
        Process::supervise(name, command, None)
    }

    /// Like [`Process::spawn`], and once the owner is gone the supervisor also deletes `dir`:
    /// for a process kept in a `static`, which is never dropped, so that its files go when the
    /// test binary exits.
    pub fn spawn_removing(name: &str, command: &Command, dir: &Path) -> Result<Process> {
        Process::supervise(name, command, Some(dir))
    }

    fn supervise(name: &str, command: &Command, remove: Option<&Path>) -> Result<Process> {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("supervisor")
            .arg(remove.map(Path::as_os_str).unwrap_or_default())
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The shell's own notes ("Killed"); the program's errors go to standard output.
            .stderr(Stdio::null());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => shell.env(key, value),
                None => shell.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            shell.current_dir(dir);
        }
        let mut shell = shell.spawn()?;
        let lifeline = shell.stdin.take();
        let stdout = shell.stdout.take().ok_or_else(|| {
            std::io::Error::other(format!("{name}: the supervisor has no standard output"))
        })?;
        let output = Arc::new(Output {
            seen: Mutex::default(),
            changed: Condvar::new(),
        });
        let sink = Arc::clone(&output);
        // Reads every line for as long as the process runs, so that it never blocks on a pipe.
        std::thread::spawn(move || collect(stdout, &sink));
        let mut process = Process {
            name: name.to_owned(),
            pid: 0,
            shell,
            lifeline,
            output,
        };
        process.pid = process.wait_for("its process id", PATIENCE, |seen| seen.pid)?;
        Ok(process)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits (`patience` at most) until `found` answers something from what the process has
    /// said; fails with its last output if it exits or time runs out first.
    fn wait_for<T>(
        &self,
        what: &str,
        patience: Duration,
        mut found: impl FnMut(&Seen) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + patience;
        let mut seen = self.output.lock();
        loop {
            if let Some(answer) = found(&seen) {
                return Ok(answer);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if seen.exit.is_some() || left.is_zero() {
                let why = if seen.exit.is_some() {
                    seen.why_gone()
                } else {
                    format!("{patience:?} went by")
                };
                return Err(Error::NotSeen {
                    name: self.name.clone(),
                    what: what.to_owned(),
                    why,
                    output: tail(&seen.lines),
                });
            }
            seen = self
                .output
                .changed
                .wait_timeout(seen, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for what `found` makes of the lines said so far (all of them, each time one comes).
    pub fn wait_lines<T>(
        &self,
        what: &str,
        patience: Duration,
        mut found: impl FnMut(&[String]) -> Option<T>,
    ) -> Result<T> {
        self.wait_for(what, patience, |seen| found(&seen.lines))
    }

    /// Waits for a line that `wanted` accepts, among those already said and those to come.
    pub fn wait_line(
        &self,
        what: &str,
        patience: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<String> {
        self.wait_lines(what, patience, |lines| {
            lines.iter().find(|l| wanted(l)).cloned()
        })
    }

    /// Waits for a line that starts with `prefix`, and answers the word after it: where a
    /// server says it listens (`chancery: listening on http://127.0.0.1:4312 (...)`).
    pub fn wait_address(&self, prefix: &str, patience: Duration) -> Result<String> {
        let line = self.wait_line(&format!("{prefix:?}"), patience, |l| l.starts_with(prefix))?;
        Ok(line[prefix.len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned())
    }

    /// Waits until the process exits on its own: its exit code, when the supervisor could tell.
    pub fn wait_exit(&self, patience: Duration) -> Result<Option<i32>> {
        self.wait_for("its exit", patience, |seen| seen.exit)
    }

    /// Every line the process has said.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().lines.clone()
    }

    /// Everything the process has said, a line each.
    pub fn log(&self) -> String {
        self.output.lock().lines.join("\n")
    }

    /// The last lines the process said, for failure messages.
    pub fn tail(&self) -> String {
        tail(&self.output.lock().lines)
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        self.output.lock().exit.is_some()
    }

    /// SIGKILL, as a crash or the OOM killer would, and waits until it is gone.
    pub fn kill9(&mut self) -> Result<()> {
        self.signal("KILL", PATIENCE)
    }

    /// SIGTERM (a clean shutdown), and waits `patience` at most for the process to exit.
    pub fn terminate(&mut self, patience: Duration) -> Result<()> {
        self.signal("TERM", patience)
    }

    fn signal(&mut self, signal: &str, patience: Duration) -> Result<()> {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.pid.to_string()])
            // "No such process" when it has exited meanwhile, which the check below allows.
            .stderr(Stdio::null())
            .status()?;
        if !sent.success() && !self.exited() {
            return Err(
                std::io::Error::other(format!("kill -{signal} {} failed", self.pid)).into(),
            );
        }
        self.wait_exit(patience)?;
        let _ = self.shell.wait();
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(
                std::io::stderr(),
                "--- the last output of {} ---\n{}",
                self.name,
                self.tail()
            );
        }
        // Closing the supervisor's standard input makes it SIGKILL the process and exit.
        drop(self.lifeline.take());
        let _ = self.shell.wait();
    }
}

/// Files the supervisor's lines: the process id, the exit, and every line the process says.
fn collect(stdout: std::process::ChildStdout, output: &Output) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let mut seen = output.lock();
        if let Some(pid) = line.strip_prefix(PID_LINE) {
            seen.pid = pid.trim().parse().ok();
        } else if let Some(code) = line.strip_prefix(EXIT_LINE) {
            seen.exit = Some(code.trim().parse().ok());
        } else {
            seen.lines.push(line);
        }
        output.changed.notify_all();
    }
    output.lock().exit.get_or_insert(None);
    output.changed.notify_all();
}

fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(TAIL)..].join("\n")
}
