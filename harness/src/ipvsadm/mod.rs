//! `lvslab ipvsadm NAME ARGS…`: a kept lab's director seen and changed with ipvsadm's own
//! options, on either engine. The kernel engine is read and edited over generic netlink in
//! the director's namespace, as the real ipvsadm would; the embedded engine lives in the
//! lab's owner, which answers on its control socket (`control`). The views are the shared
//! byte-for-byte renderings of an `IpvsSnapshot`; refusals are ipvsadm's words and exit codes.

pub mod args;
pub mod control;

use std::process::ExitCode;

use crate::cli::CliError;
use crate::director::kernel::client::GenlError;
use crate::director::kernel::engine::{Admin, DestCmd};
use crate::director::{EngineKind, ServiceKey};
use crate::ipvs::{DestConfig, IpvsSnapshot};
use crate::lab;
use args::{Command, View};
use control::{Op, Reply};

/// ipvsadm's exit status when IPVS refused (`process_options` returns -1).
const EXIT_REFUSED: u8 = 255;
/// `list_service`'s exit status for a service that is not there.
const EXIT_NO_SERVICE: u8 = 1;

/// Runs one ipvsadm command line against the director of kept lab `name`.
pub fn run(name: &str, director: Option<&str>, argv: &[String]) -> Result<ExitCode, CliError> {
    let bad = |m: String| CliError::bad_input(format!("lvslab ipvsadm: {m}"));
    let (named, argv) = take_director(argv).map_err(bad)?;
    let director = match (director, named.as_deref()) {
        (Some(a), Some(b)) if a != b => return Err(bad(format!("--director given twice: {a} and {b}"))),
        (Some(a), _) => Some(a),
        (None, b) => b,
    };
    let command = match args::parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.message);
            return Err(CliError::Reported(e.exit));
        }
    };
    let Some(kept) = lab::list_kept().into_iter().find(|k| k.name == name) else {
        return Err(bad(format!(
            "no kept lab named {name} (see `lvslab list`; start one with `lvslab up FILE`)"
        )));
    };
    if !kept.alive {
        return Err(bad(format!(
            "the owner of lab {name} (pid {}) is gone; run `lvslab clean`",
            kept.pid
        )));
    }
    let run_dir = lab::run_dir(&kept.run_id);
    let directors = match control::ask(&run_dir, Op::Directors) {
        Ok(Reply::Directors { directors }) => directors,
        Ok(other) => return Err(bad(format!("lab {name}: unexpected answer {other:?}"))),
        Err(e) => return Err(bad(format!("lab {name}: {e}"))),
    };
    let (chosen, kind) = choose(name, &directors, director).map_err(bad)?;
    // With several directors and none named, every refusal says whose it was.
    let whose = (director.is_none() && directors.len() > 1).then(|| {
        let names: Vec<&str> = directors.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "lvslab ipvsadm: that was director {chosen}, the first of {}; name another with --director",
            names.join(", ")
        )
    });
    let target = Target {
        lab: name,
        director: &chosen,
        kind,
        run_dir: &run_dir,
    };
    let outcome = execute(&target, &command).map_err(bad)?;
    match outcome {
        Outcome::Printed(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Refused(message, code) => {
            eprintln!("{message}");
            if let Some(whose) = whose {
                eprintln!("{whose}");
            }
            Err(CliError::Reported(code))
        }
    }
}

/// The director `--director` names, or the first.
fn choose(lab: &str, directors: &[(String, EngineKind)], wanted: Option<&str>) -> Result<(String, EngineKind), String> {
    let names = || directors.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    match wanted {
        Some(w) => directors
            .iter()
            .find(|(n, _)| n == w)
            .cloned()
            .ok_or_else(|| format!("lab {lab} has no director {w} (directors: {})", names())),
        None => directors
            .first()
            .cloned()
            .ok_or_else(|| format!("lab {lab} has no director running")),
    }
}

struct Target<'a> {
    lab: &'a str,
    director: &'a str,
    kind: EngineKind,
    run_dir: &'a std::path::Path,
}

enum Outcome {
    Printed(String),
    /// ipvsadm's message on stderr, and its exit status.
    Refused(String, u8),
}

fn execute(target: &Target, command: &Command) -> Result<Outcome, String> {
    match command {
        Command::List { view, service } => {
            let snapshot = snapshot(target)?;
            Ok(listing(&snapshot, *view, service.as_ref()))
        }
        Command::Save => Ok(Outcome::Printed(snapshot(target)?.save_text())),
        Command::Dest { cmd, service, dest } => match dest_command(target, *cmd, service, dest)? {
            None => Ok(Outcome::Printed(String::new())),
            Some(errno) => Ok(Outcome::Refused(strerror(*cmd, errno), EXIT_REFUSED)),
        },
    }
}

/// The view `-L` asks for; with a service, `list_service`: its rows without the version line.
fn listing(snapshot: &IpvsSnapshot, view: View, service: Option<&ServiceKey>) -> Outcome {
    let render = |s: &IpvsSnapshot| match view {
        View::Plain => s.list_text(),
        View::Stats { exact: false } => s.stats_text(),
        View::Stats { exact: true } => s.stats_text_exact(),
        View::Rate { exact: false } => s.rate_text(),
        View::Rate { exact: true } => s.rate_text_exact(),
        View::Thresholds => s.thresholds_text(),
        View::PersistentConn => s.persistent_conn_text(),
        View::Conns => s.conns_text(),
    };
    let Some(key) = service else {
        return Outcome::Printed(render(snapshot));
    };
    let Some(one) = snapshot.services.iter().find(|s| s.key() == *key) else {
        return Outcome::Refused("No such service".into(), EXIT_NO_SERVICE);
    };
    let only = IpvsSnapshot {
        services: vec![one.clone()],
        ..snapshot.clone()
    };
    let text = render(&only);
    let rows = text.split_once('\n').map_or("", |(_, rest)| rest);
    Outcome::Printed(rows.to_string())
}

fn snapshot(target: &Target) -> Result<IpvsSnapshot, String> {
    match target.kind {
        EngineKind::Kernel => in_director(target, |admin| admin.snapshot().map_err(|e| e.to_string()))?,
        EngineKind::Embedded => match ask(
            target,
            Op::Snapshot {
                director: target.director.to_string(),
            },
        )? {
            Reply::Snapshot { snapshot } => Ok(*snapshot),
            Reply::Refused { detail, .. } => Err(detail),
            other => Err(format!("unexpected answer {other:?}")),
        },
    }
}

/// `Ok(None)` done, `Ok(Some(errno))` refused by IPVS, `Err` could not ask.
fn dest_command(target: &Target, cmd: DestCmd, service: &ServiceKey, dest: &DestConfig) -> Result<Option<i32>, String> {
    match target.kind {
        EngineKind::Kernel => in_director(target, |admin| match admin.dest_command(cmd, service, dest) {
            Ok(()) => Ok(None),
            Err(GenlError::Kernel(errno)) => Ok(Some(errno)),
            Err(e) => Err(e.to_string()),
        })?,
        EngineKind::Embedded => match ask(
            target,
            Op::Dest {
                director: target.director.to_string(),
                cmd,
                service: *service,
                dest: dest.clone(),
            },
        )? {
            Reply::Done => Ok(None),
            Reply::Refused { errno, .. } => Ok(Some(errno)),
            other => Err(format!("unexpected answer {other:?}")),
        },
    }
}

fn ask(target: &Target, op: Op) -> Result<Reply, String> {
    match control::ask(target.run_dir, op) {
        Ok(Reply::Error { message }) => Err(format!("lab {}: {message}", target.lab)),
        Ok(reply) => Ok(reply),
        Err(e) => Err(format!("lab {}: {e}", target.lab)),
    }
}

/// Runs `f` on a thread inside the director's namespace, with kernel IPVS opened there.
fn in_director<T: Send>(target: &Target, f: impl FnOnce(&Admin) -> T + Send) -> Result<T, String> {
    let fd = lab::enter_kept(target.lab, target.director).map_err(|e| e.to_string())?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("cannot enter {}/{}: {e}", target.lab, target.director))?;
                let admin = Admin::open().map_err(|e| e.to_string())?;
                Ok(f(&admin))
            })
            .join()
            .unwrap_or_else(|_| Err("the namespace thread panicked".into()))
    })
}

/// libipvs's `ipvs_strerror` for the real-server commands.
pub fn strerror(cmd: DestCmd, errno: i32) -> String {
    let message = match (cmd, errno) {
        (_, libc::ESRCH) => "Service not defined",
        (DestCmd::Add, libc::EEXIST) => "Destination already exists",
        (DestCmd::Edit | DestCmd::Delete, libc::ENOENT) => "No such destination",
        (_, libc::EPERM) => "Permission denied (you must be root)",
        (_, libc::EINVAL) => "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        (_, libc::ENOPROTOOPT) => "Protocol not available",
        (_, libc::ENOMEM) => "Memory allocation problem",
        (_, libc::EOPNOTSUPP) => "Operation not supported with IPv6",
        (_, libc::EAFNOSUPPORT) => "Operation not supported with specified address family",
        (_, libc::EMSGSIZE) => "Module is wrong version",
        // strerror(3), as glibc words it.
        (_, errno) => {
            let text = std::io::Error::from_raw_os_error(errno).to_string();
            return match text.rfind(" (os error ") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
        }
    };
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_libipvs_words_them() {
        assert_eq!(strerror(DestCmd::Edit, libc::ENOENT), "No such destination");
        assert_eq!(strerror(DestCmd::Delete, libc::ESRCH), "Service not defined");
        assert_eq!(strerror(DestCmd::Add, libc::EEXIST), "Destination already exists");
        assert_eq!(strerror(DestCmd::Add, libc::ENOMEM), "Memory allocation problem");
        assert_eq!(strerror(DestCmd::Add, libc::ERANGE), "Numerical result out of range");
    }

    #[test]
    fn the_first_director_is_the_default_and_a_wrong_name_lists_them() {
        let directors = vec![
            ("dir1".to_string(), EngineKind::Embedded),
            ("dir2".to_string(), EngineKind::Embedded),
        ];
        assert_eq!(choose("lab", &directors, None).unwrap().0, "dir1");
        assert_eq!(choose("lab", &directors, Some("dir2")).unwrap().0, "dir2");
        assert_eq!(
            choose("lab", &directors, Some("dir3")).unwrap_err(),
            "lab lab has no director dir3 (directors: dir1, dir2)"
        );
        assert!(choose("lab", &[], None).unwrap_err().contains("no director"));
    }
}

/// `--director D` (or `--director=D`) taken out of ipvsadm's arguments, wherever it was
/// written: ipvsadm has no option of that name, so it is always lvslab's.
fn take_director(argv: &[String]) -> Result<(Option<String>, Vec<String>), String> {
    let mut director = None;
    let mut rest = Vec::with_capacity(argv.len());
    let mut args = argv.iter();
    while let Some(a) = args.next() {
        let value = if a == "--director" {
            Some(args.next().cloned().ok_or("--director needs a director's name")?)
        } else {
            a.strip_prefix("--director=").map(str::to_owned)
        };
        match value {
            Some(v) if director.as_ref().is_some_and(|d| *d != v) => {
                return Err(format!(
                    "--director given twice: {} and {v}",
                    director.unwrap_or_default()
                ))
            }
            Some(v) => director = Some(v),
            None => rest.push(a.clone()),
        }
    }
    Ok((director, rest))
}

#[cfg(test)]
mod director_option_tests {
    use super::take_director;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn director_is_taken_from_anywhere_in_the_arguments() {
        assert_eq!(
            take_director(&argv("-Ln --director lvs2")).unwrap(),
            (Some("lvs2".into()), argv("-Ln"))
        );
        assert_eq!(
            take_director(&argv("-e -t 192.0.2.100:80 --director=lvs1 -r 192.0.2.11:80 -w 0")).unwrap(),
            (Some("lvs1".into()), argv("-e -t 192.0.2.100:80 -r 192.0.2.11:80 -w 0"))
        );
        assert_eq!(take_director(&argv("-Ln")).unwrap(), (None, argv("-Ln")));
    }

    #[test]
    fn director_without_a_name_or_twice_is_refused() {
        assert!(take_director(&argv("-Ln --director"))
            .unwrap_err()
            .contains("needs a director"));
        assert!(take_director(&argv("--director a -Ln --director b"))
            .unwrap_err()
            .contains("given twice: a and b"));
    }
}
