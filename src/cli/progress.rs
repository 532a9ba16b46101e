//! A one-line progress bar on stderr (`[#######       ] 12/40`), drawn only when stderr is a
//! terminal so that logs and pipes get plain lines. Messages printed through it keep the bar
//! at the bottom.

use std::io::{IsTerminal, Write};

/// Width of the bar between the brackets.
const BAR_WIDTH: usize = 30;

/// Progress through `total` items.
pub struct Progress {
    total: usize,
    done: usize,
    draw: bool,
}

impl Progress {
    /// A bar for `total` items; drawn only on a terminal.
    pub fn new(total: usize) -> Self {
        let p = Self {
            total,
            done: 0,
            draw: total > 0 && std::io::stderr().is_terminal(),
        };
        p.redraw();
        p
    }

    /// Counts one item done and prints its line on stdout (or stderr) above the bar.
    pub fn advance(&mut self, line: &str, to_stderr: bool) {
        self.done = (self.done + 1).min(self.total);
        self.clear();
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
        self.redraw();
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.clear();
    }

    fn clear(&self) {
        if self.draw {
            eprint!("\r\x1b[2K");
        }
    }

    fn redraw(&self) {
        if self.draw {
            eprint!("\r{}", bar(self.done, self.total));
            let _ = std::io::stderr().flush();
        }
    }
}

/// `[####      ] 4/10`.
pub fn bar(done: usize, total: usize) -> String {
    let filled = (done * BAR_WIDTH).checked_div(total).unwrap_or(BAR_WIDTH);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(BAR_WIDTH - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::bar;

    #[test]
    fn the_bar_fills_in_proportion() {
        assert_eq!(bar(0, 3), format!("[{}] 0/3", " ".repeat(30)));
        assert_eq!(
            bar(1, 2),
            format!("[{}{}] 1/2", "#".repeat(15), " ".repeat(15))
        );
        assert_eq!(bar(2, 2), format!("[{}] 2/2", "#".repeat(30)));
    }
}
