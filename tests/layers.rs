//! The dependency rule of `src/`, checked on the source text: each top-level module imports
//! only modules below it in [`LAYERS`], and no two files import each other, directly or
//! round a longer circle. `cargo test --test layers -- --nocapture` prints every import
//! between modules; docs/architecture.md explains the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom up: a module may import those before it, never one
/// after it. Core first, then configuration, infrastructure, the application, the adapters.
const LAYERS: &[&str] = &[
    // the protocol core: pure, synchronous, no I/O
    "error",
    "escape",
    "clock",
    // counters and latencies: recorded from every layer above, rendered, never sent
    "metrics",
    "platform",
    "url_policy",
    "xml",
    "crypto",
    "message",
    "reply",
    "aibot",
    // the Mini Program's JSON push, converted to and from the XML the core reads
    "json_push",
    // configuration: data, parsed and validated once
    "config",
    // infrastructure: outbound HTTP, config values kept in AWS, the store, the platforms' APIs
    "http",
    "aws_refs",
    "store",
    "wechat",
    // the application: what to answer, and the pipeline of one callback
    "bot",
    "gateway",
    // adapters: how requests arrive and how the process runs
    "logging",
    "server",
    "lambda",
    "simulate",
    "cli",
];

/// One source file: its path under `src/` and the module path it defines.
struct Source {
    file: String,
    module: Vec<String>,
    text: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path
                .strip_prefix(&root)
                .ok()?
                .to_string_lossy()
                .into_owned();
            if rel == "main.rs" || rel == "lib.rs" {
                return None;
            }
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_owned)
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            let text = without_tests_and_comments(&fs::read_to_string(&path).ok()?);
            Some(Source {
                file: rel,
                module,
                text,
            })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code without `//` comments and without the unit tests at the file's end (test code
/// may reach anywhere).
fn without_tests_and_comments(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path a file names: `crate::a::b`, `super::x`, `self::x`, and the paths
/// inside `use …::{…}` groups, and `child::x` where the file declares `mod child;`, as absolute module paths (segments, longest first kept).
fn named_paths(source: &Source) -> Vec<Vec<String>> {
    let tokens = tokenize(&source.text);
    let children: BTreeSet<&str> = tokens
        .windows(3)
        .filter(|w| w[0] == "mod" && w[2] == ";")
        .map(|w| w[1].as_str())
        .collect();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let start = tokens[i].as_str();
        let base: Option<Vec<String>> = match start {
            "crate" => Some(Vec::new()),
            // `super` in `a/b.rs` (module a::b) is a; in `a/mod.rs` (module a), the crate root:
            // either way the module path without its last segment.
            "super" => Some(source.module[..source.module.len().saturating_sub(1)].to_vec()),
            "self" => Some(source.module.clone()),
            // `use child::Item;` in the file that declares `mod child;`
            name if children.contains(name)
                && (i == 0 || tokens[i - 1] != "::")
                && tokens.get(i + 1).is_some_and(|t| t == "::") =>
            {
                let mut child = source.module.clone();
                child.push(name.to_owned());
                Some(child)
            }
            _ => None,
        };
        if let Some(base) = base {
            let (end, found) = expand(&tokens, i + 1, base);
            paths.extend(found);
            i = end;
        } else {
            i += 1;
        }
    }
    paths
}

/// Reads `::seg::seg::{…}` after a path start; returns where it ended and the paths named.
fn expand(tokens: &[String], mut i: usize, prefix: Vec<String>) -> (usize, Vec<Vec<String>>) {
    let mut path = prefix;
    let mut found = Vec::new();
    while tokens.get(i).is_some_and(|t| t == "::") {
        match tokens.get(i + 1).map(String::as_str) {
            Some("{") => {
                i += 2;
                loop {
                    match tokens.get(i).map(String::as_str) {
                        Some("}") | None => {
                            i += 1;
                            break;
                        }
                        Some(",") => i += 1,
                        Some(name) if is_ident(name) => {
                            let mut inner = path.clone();
                            if name != "self" {
                                inner.push(name.to_owned());
                            }
                            let (end, more) = expand(tokens, i + 1, inner.clone());
                            if more.is_empty() {
                                found.push(inner);
                            }
                            found.extend(more);
                            i = end;
                        }
                        Some(_) => i += 1,
                    }
                }
                return (i, found);
            }
            Some(name) if is_ident(name) => {
                path.push(name.to_owned());
                i += 2;
            }
            _ => break,
        }
    }
    found.push(path);
    (i, found)
}

fn is_ident(token: &str) -> bool {
    token.chars().all(|c| c.is_alphanumeric() || c == '_') && !token.is_empty()
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut in_string = false;
    while let Some((at, c)) = chars.next() {
        if in_string {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            ':' if text[at + 1..].starts_with(':') => {
                chars.next();
                tokens.push("::".to_owned());
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut end = at + c.len_utf8();
                while let Some(&(next_at, next)) = chars.peek() {
                    if next.is_alphanumeric() || next == '_' {
                        end = next_at + next.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(text[at..end].to_owned());
            }
            c if c.is_whitespace() => {}
            c => tokens.push(c.to_string()),
        }
    }
    tokens
}

/// File → files it imports (resolved to the deepest module that is a file).
fn file_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let by_module: BTreeMap<Vec<String>, &str> = sources
        .iter()
        .map(|s| (s.module.clone(), s.file.as_str()))
        .collect();
    let mut graph = BTreeMap::new();
    for source in sources {
        let mut targets = BTreeSet::new();
        for path in named_paths(source) {
            let file = (1..=path.len())
                .rev()
                .find_map(|n| by_module.get(&path[..n]).copied());
            // A `mod.rs` declaring and re-exporting its own children is not an import.
            let own_child = |file: &str| {
                source.file.ends_with("mod.rs")
                    && file.starts_with(source.file.trim_end_matches("mod.rs"))
            };
            if let Some(file) = file
                && file != source.file
                && !own_child(file)
            {
                targets.insert(file.to_owned());
            }
        }
        graph.insert(source.file.clone(), targets);
    }
    graph
}

fn top(file: &str) -> &str {
    file.split('/').next().unwrap().trim_end_matches(".rs")
}

#[test]
fn every_top_level_module_is_placed_in_a_layer() {
    let unplaced: BTreeSet<String> = sources()
        .iter()
        .map(|s| top(&s.file).to_owned())
        .filter(|m| !LAYERS.contains(&m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules missing from LAYERS: {unplaced:?}"
    );
}

#[test]
fn modules_import_only_layers_below_them() {
    let graph = file_graph(&sources());
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut upward = Vec::new();
    let mut edges: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (file, targets) in &graph {
        for target in targets {
            let (from, to) = (top(file), top(target));
            if from == to {
                continue;
            }
            *edges.entry((from.to_owned(), to.to_owned())).or_default() += 1;
            if rank(from) < rank(to) {
                upward.push(format!("{file} -> {target}"));
            }
        }
    }
    for ((from, to), files) in &edges {
        println!("{from} -> {to} ({files} file(s))");
    }
    assert!(
        upward.is_empty(),
        "imports against the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_file_is_part_of_an_import_circle() {
    let graph = file_graph(&sources());
    // A file is on a circle when it can reach itself; ~70 files, so a walk from each will do.
    let reaches = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph[from].iter().collect();
        while let Some(file) = todo.pop() {
            if seen.insert(file.clone()) {
                todo.extend(graph.get(file).into_iter().flatten());
            }
        }
        seen
    };
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|file| {
            let reached = reaches(file);
            reached.contains(file).then(|| {
                let with: Vec<&String> = reached
                    .iter()
                    .filter(|other| *other != file && reaches(other).contains(file))
                    .collect();
                format!("{file} <-> {with:?}")
            })
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files importing each other:\n{}",
        circles.join("\n")
    );
}
