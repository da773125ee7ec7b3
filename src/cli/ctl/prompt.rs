//! Interactive prompts like patronictl's; never blocks without a terminal unless the answers
//! are piped in.

use super::error::{CliError, CliResult};
use std::io::{BufRead, IsTerminal, Write};

/// True when stdin is a terminal.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks a yes/no question. With `force` the answer is yes; without a terminal it is an
/// error telling the user to pass `--force`.
pub fn confirm(question: &str, force: bool) -> CliResult<()> {
    if force {
        return Ok(());
    }
    if !interactive() {
        return Err(CliError::Aborted(format!(
            "{question} — confirmation needed but stdin is not a terminal; use --force"
        )));
    }
    let answer = ask(&format!("{question} [y/N]: "))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Aborted("Aborted".into()))
    }
}

/// Reads one line after printing `prompt` (works with piped stdin; EOF is an error).
pub fn ask(prompt: &str) -> CliResult<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Aborted(format!("cannot read the answer: {e}")))?;
    if n == 0 {
        return Err(CliError::Aborted(
            "Aborted: no answer (end of input)".into(),
        ));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks for a value, offering a default; without a terminal the default must exist.
pub fn ask_default(prompt: &str, default: Option<&str>, force: bool) -> CliResult<String> {
    if force || !interactive() {
        return default.map(str::to_string).ok_or_else(|| {
            CliError::Aborted(format!(
                "{prompt}: no value given and stdin is not a terminal"
            ))
        });
    }
    let shown = default.map(|d| format!(" [{d}]")).unwrap_or_default();
    let a = ask(&format!("{prompt}{shown}: "))?;
    if a.trim().is_empty() {
        default
            .map(str::to_string)
            .ok_or_else(|| CliError::Aborted(format!("{prompt}: a value is required")))
    } else {
        Ok(a.trim().to_string())
    }
}
