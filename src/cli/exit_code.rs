//! The one table of `patronus` exit codes: every command ends with an [`Exit`], `main` turns it
//! into the process status, and `--help` and docs/operations.md print [`TABLE`].

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: the operation succeeded, the repository is valid, a plan has no changes.
    Success,
    /// The operation failed or was refused, or the repository is invalid (reason on stderr).
    Failure,
    /// Command-line usage error (unknown option, missing argument): clap's own status.
    Usage,
    /// `plan` only: the plan has changes (Terraform's `-detailed-exitcode`).
    Changes,
}

impl Exit {
    /// The process status of this outcome.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage | Exit::Changes => 2,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// `(status, meaning)` for every command, as `--help` prints it.
pub const TABLE: &[(u8, &str)] = &[
    (0, "success; validate: valid; plan: no changes"),
    (
        1,
        "failure or refusal (reason on stderr); validate: invalid (every problem listed)",
    ),
    (2, "usage error; plan: the plan has changes"),
];

/// [`TABLE`] as the `Exit codes:` paragraph of `--help`.
pub fn help_text() -> String {
    let mut out = String::from("Exit codes:");
    for (code, meaning) in TABLE {
        out.push_str(&format!("\n  {code}  {meaning}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome's status appears in the table, and the table names no other status.
    #[test]
    fn the_table_describes_every_outcome() {
        let all = [Exit::Success, Exit::Failure, Exit::Usage, Exit::Changes];
        for e in all {
            assert!(
                TABLE.iter().any(|(c, _)| *c == e.code()),
                "{e:?} has no row"
            );
        }
        for (c, _) in TABLE {
            assert!(all.iter().any(|e| e.code() == *c), "row {c} has no outcome");
        }
    }

    /// clap's usage status is the one the table documents.
    #[test]
    fn usage_matches_clap() {
        let err = clap::Command::new("x")
            .try_get_matches_from(["x", "--nope"])
            .unwrap_err();
        assert_eq!(err.exit_code(), i32::from(Exit::Usage.code()));
    }

    #[test]
    fn help_text_lists_the_rows() {
        let h = help_text();
        assert!(h.starts_with("Exit codes:"));
        assert!(h.contains("\n  2  usage error; plan: the plan has changes"));
    }
}
