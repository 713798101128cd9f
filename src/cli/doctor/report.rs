//! The checklist `wxgate doctor` prints: one line per check, and under a failed one its
//! cause and its fix.

use std::io::Write as _;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// It passed.
    Ok,
    /// It failed: a callback or an API call will not work until it is fixed.
    Fail,
    /// It was not run: an earlier check failed, or an option it needs was not given.
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fail => "FAIL",
            Self::Skipped => "skipped",
        }
    }
}

/// One check's result. Its texts never hold a secret, a token or a message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub outcome: Outcome,
    /// What was checked, e.g. `demo: token fetch`.
    pub what: String,
    /// What was found (ok), or what went wrong (FAIL), or why not run (skipped).
    pub detail: String,
    /// FAIL: the likely cause.
    pub cause: Option<String>,
    /// FAIL: what to do.
    pub fix: Option<String>,
}

impl Line {
    pub fn ok(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Outcome::Ok, what, detail)
    }

    pub fn skipped(what: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(Outcome::Skipped, what, why)
    }

    pub fn fail(
        what: impl Into<String>,
        detail: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            cause: Some(cause.into()),
            fix: Some(fix.into()),
            ..Self::new(Outcome::Fail, what, detail)
        }
    }

    fn new(outcome: Outcome, what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            what: what.into(),
            detail: detail.into(),
            cause: None,
            fix: None,
        }
    }
}

/// The lines so far, printed as they come so a slow check shows where it is.
#[derive(Debug, Default)]
pub(super) struct Checklist {
    lines: Vec<Line>,
}

impl Checklist {
    /// Prints `line` and keeps it.
    pub fn push(&mut self, line: Line) {
        out!("{:<7} {}: {}", line.outcome.label(), line.what, line.detail);
        if let Some(cause) = &line.cause {
            out!("        cause: {cause}");
        }
        if let Some(fix) = &line.fix {
            out!("        fix:   {fix}");
        }
        self.lines.push(line);
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.outcome == Outcome::Fail)
            .count()
    }

    /// The last line of `what`, to let a later check depend on an earlier one.
    pub fn passed(&self, what: &str) -> bool {
        self.lines
            .iter()
            .rev()
            .find(|l| l.what == what)
            .is_some_and(|l| l.outcome == Outcome::Ok)
    }

    /// One summary line.
    pub fn summary(&self) -> String {
        let count = |o| self.lines.iter().filter(|l| l.outcome == o).count();
        format!(
            "{} ok, {} failed, {} skipped",
            count(Outcome::Ok),
            count(Outcome::Fail),
            count(Outcome::Skipped)
        )
    }
}
