//! The kernel's own list of network sysctls, read once per process. From a fresh network
//! namespace when this process may make one: that is what a lab host starts with (only `lo`,
//! no init-namespace-only knobs such as `neigh.default.gc_thresh1`). Otherwise from the host's
//! /proc/sys/net, which holds at least as much.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

/// Where the list was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    FreshNamespace,
    Host,
}

/// What a sysctl file holds now, as far as its shape tells what it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Whitespace-separated decimal integers (`1`, `4096 131072 6291456`).
    Integers,
    /// Anything else (`bbr`, `0-1,3-127`).
    Text,
    /// Empty or unreadable: nothing to go by.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    File { writable: bool, shape: Shape },
}

#[derive(Debug)]
pub(crate) struct Tree {
    pub source: Source,
    /// By path under /proc/sys/net, `/`-separated: `ipv4/conf/lo/arp_ignore`.
    nodes: HashMap<String, Node>,
}

/// Deep enough for every knob (`ipv4/neigh/lo/retrans_time_ms` is 4); bounds the walk.
const MAX_DEPTH: usize = 8;
/// A sysctl's value is a line or a few numbers; more is not needed to tell its shape.
const MAX_VALUE_BYTES: u64 = 4096;
/// CPU masks: they show as digits but take hex (`ff`).
const CPU_MASKS: [&str; 2] = ["core/rps_default_mask", "core/flow_limit_cpu_bitmap"];

impl Tree {
    pub fn get(&self, path: &str) -> Option<Node> {
        self.nodes.get(path).copied()
    }

    /// Names directly under `dir` (`""` for /proc/sys/net itself).
    pub fn children<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.nodes.keys().filter_map(move |k| {
            let rest = if dir.is_empty() {
                k.as_str()
            } else {
                k.strip_prefix(dir)?.strip_prefix('/')?
            };
            (!rest.contains('/')).then_some(rest)
        })
    }

    #[cfg(test)]
    pub fn from_nodes(source: Source, nodes: impl IntoIterator<Item = (&'static str, Node)>) -> Tree {
        Tree {
            source,
            nodes: nodes.into_iter().map(|(k, n)| (k.to_owned(), n)).collect(),
        }
    }
}

/// The kernel's tree, listed on first use; `None` when /proc/sys/net cannot be read at all.
pub(crate) fn kernel() -> Option<&'static Tree> {
    static TREE: OnceLock<Option<Tree>> = OnceLock::new();
    TREE.get_or_init(list).as_ref()
}

/// On a thread of its own: `unshare` moves only the calling thread to the new namespace,
/// which goes away when the thread ends.
fn list() -> Option<Tree> {
    let lister = std::thread::Builder::new().name("lvslab-sysctls".into()).spawn(|| {
        let source = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            Ok(()) => Source::FreshNamespace,
            Err(_) => Source::Host,
        };
        let mut nodes = HashMap::new();
        walk(Path::new("/proc/sys/net"), "", 0, &mut nodes);
        (!nodes.is_empty()).then_some(Tree { source, nodes })
    });
    lister.ok()?.join().ok().flatten()
}

fn walk(dir: &Path, prefix: &str, depth: usize, nodes: &mut HashMap<String, Node>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(&entry.path(), &key, depth + 1, nodes);
            }
            nodes.insert(key, Node::Dir);
        } else {
            let shape = if CPU_MASKS.contains(&key.as_str()) {
                Shape::Text
            } else {
                shape_of(&entry.path())
            };
            let writable = meta.permissions().mode() & 0o200 != 0;
            nodes.insert(key, Node::File { writable, shape });
        }
    }
}

fn shape_of(path: &Path) -> Shape {
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_VALUE_BYTES).read_to_string(&mut text));
    match read {
        Ok(_) => classify(&text),
        Err(_) => Shape::Unknown,
    }
}

pub(crate) fn classify(value: &str) -> Shape {
    if value.trim().is_empty() {
        Shape::Unknown
    } else if is_integers(value) {
        Shape::Integers
    } else {
        Shape::Text
    }
}

/// One or more whitespace-separated decimal integers.
pub(crate) fn is_integers(value: &str) -> bool {
    let mut tokens = value.split_whitespace().peekable();
    tokens.peek().is_some() && tokens.all(|t| t.parse::<i128>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_what_the_kernel_shows() {
        assert_eq!(classify("1\n"), Shape::Integers);
        assert_eq!(classify("4096\t131072\t6291456\n"), Shape::Integers);
        assert_eq!(classify("-1"), Shape::Integers);
        assert_eq!(classify("bbr\n"), Shape::Text);
        assert_eq!(classify("0-1,3-127"), Shape::Text);
        assert_eq!(classify("\n"), Shape::Unknown);
    }

    #[test]
    fn children_are_one_level_down() {
        let t = Tree::from_nodes(
            Source::Host,
            [
                ("ipv4", Node::Dir),
                ("ipv4/conf", Node::Dir),
                ("ipv4/conf/lo", Node::Dir),
                (
                    "ipv4/ip_forward",
                    Node::File {
                        writable: true,
                        shape: Shape::Integers,
                    },
                ),
            ],
        );
        let mut got: Vec<&str> = t.children("ipv4").collect();
        got.sort_unstable();
        assert_eq!(got, ["conf", "ip_forward"]);
        assert_eq!(t.children("").collect::<Vec<_>>(), ["ipv4"]);
    }

    #[test]
    fn the_kernel_tree_has_the_knobs_every_lab_host_gets() {
        let Some(tree) = kernel() else {
            eprintln!("skipped: /proc/sys/net cannot be read here");
            return;
        };
        for path in ["ipv4/ip_forward", "ipv4/conf/all/arp_ignore", "ipv4/conf/lo/rp_filter"] {
            assert!(
                matches!(
                    tree.get(path),
                    Some(Node::File {
                        writable: true,
                        shape: Shape::Integers
                    })
                ),
                "{path}: {:?}",
                tree.get(path)
            );
        }
        assert_eq!(tree.get("ipv4/conf"), Some(Node::Dir));
        if nix::unistd::geteuid().is_root() {
            assert_eq!(tree.source, Source::FreshNamespace);
            // A fresh namespace has lo (and only tunnel modules' fallback devices besides), and
            // none of the init namespace's neighbour defaults.
            let devices: Vec<&str> = tree.children("ipv4/neigh").collect();
            assert!(devices.contains(&"lo") && !devices.contains(&"default"), "{devices:?}");
        }
    }
}
