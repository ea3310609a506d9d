//! The schedule grammar summarised for a terminal (`stride schedule --help`).

/// The schedule grammar in a screenful of text: the syntax, every call with its parameters and
/// defaults, how parts combine, and examples. The module doc of `schedule` has the long form.
pub const SCHEDULE_GRAMMAR_HELP: &str = "\
Schedule grammar (--lr is the base rate every schedule starts from):

  spec  := part ( \"then\" part )* [ \"per\" ( \"step\" | \"epoch\" ) ]
  part  := call ( \"*\" call )* [ \"for\" N ]
  call  := NAME [ \"(\" [ arg ( \",\" arg )* ] \")\" ]
  arg   := [ KEY \"=\" ] value    (only a first, positional arg may omit KEY)
  value := NUMBER | WORD | \"[\" NUMBER ( \",\" NUMBER )* \"]\"

Calls (positional parameter in capitals; defaults in parentheses):
  constant(LR)      lr (--lr); `constant` alone is the same
  step(EVERY)       every (required), gamma (0.1): lr * gamma^floor(t/every)
  multistep(AT)     at (required: [30, 80] or one step), gamma (0.1)
  exp(gamma=G)      one of gamma (lr * G^t) or lambda (lr * e^(-lambda t))
  cosine(T_MAX)     t_max (required), min (0)
  restarts(T0)      t0 (required), mult (1, a whole number), min (0)
  warmup(TOTAL)     total (5), start (1/3), end (1): lr * factor, start -> end
  poly(TOTAL)       total (5), power (1)
  invtime(K)        k (required): lr / (1 + k t)
  onecycle(TOTAL)   total (required), max (--lr), pct (0.3),
                    anneal (cos|linear), div (25), final_div (1e4),
                    three_phase (false), momentum (true),
                    base_momentum (0.85), max_momentum (0.95)
  cyclic(max=M)     max (required), base (--lr), up (2000), down (up),
                    mode (triangular|triangular2|exp_range), gamma (1),
                    momentum (true), base_momentum (0.8), max_momentum (0.9)
  wsd(TOTAL)        total (required), warmup (0), decay (0.2, a fraction of
                    total) or decay_steps (N), shape (sqrt|linear), min (0):
                    warm-up from 0, --lr, then a 1-sqrt or linear cooldown
                    to min over the last steps; ends at total
  linear(TOTAL)     total (required), warmup (0), min (0): warm-up from 0,
                    then linear decay to min at total
  plateau(...)      patience (10), factor (0.1), mode (min|max),
                    threshold (1e-4), threshold_mode (rel|abs), cooldown (0),
                    min_lr (0), eps (1e-8)

  A then B  runs A, then B counting from 0 where A ended. A lasts its natural
            length (warmup, poly, onecycle, wsd, linear: total; cosine:
            t_max) or `for N`; the others need `for N`. The last part runs
            to the end.
  A * B     multiplies the factors of A and B (each at a base rate of 1) and
            scales the product by --lr: in a product, min=, max= and base=
            are fractions of --lr.
  plateau   only as the whole last part: holds --lr and divides it on
            plateaus of the metric observed after the earlier parts end.
  per       the counter is optimizer steps, or epochs with `per epoch` (a
            spec with plateau counts epochs unless it ends in `per step`).

Branching a cooldown: the stable phase of wsd does not depend on total, so
resume a stable-phase checkpoint with the same --lr and warmup and another
total; it continues at --lr and cools down for the new budget:
  stride train --resume DIR --schedule \"wsd(6000, warmup=500)\"

Examples:
  constant
  step(gamma=0.5, every=1000)
  multistep(gamma=0.1, at=[30, 80]) per epoch
  exp(lambda=1e-3)
  cosine(10000, min=1e-5)
  warmup(500) then cosine(9500)
  constant for 1000 then cosine(9000)
  warmup(500, start=0.01) * exp(gamma=0.9995)
  warmup(5) then plateau(patience=2, factor=0.5)
  onecycle(total=5000, max=0.1, anneal=linear, three_phase=true)
  cyclic(base=1e-3, max=0.1, up=2000, mode=triangular2)
  wsd(10000, warmup=500, decay=0.2, shape=sqrt)
  linear(10000, warmup=500)
";

#[cfg(test)]
mod tests {
    use super::SCHEDULE_GRAMMAR_HELP;
    use crate::schedule::calls::{signature, CALLS};
    use crate::schedule::parse_schedule;

    /// The lines of the calls section, one entry per call (continuation lines joined).
    fn call_entries() -> Vec<(String, String)> {
        let section = SCHEDULE_GRAMMAR_HELP
            .split("Calls (")
            .nth(1)
            .and_then(|s| s.split("\n\n").next())
            .unwrap();
        let mut entries: Vec<(String, String)> = Vec::new();
        for line in section.lines().skip(1) {
            let trimmed = line.trim_start();
            if line.len() - trimmed.len() == 2 {
                let name: String = trimmed.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
                entries.push((name, trimmed.to_string()));
            } else if let Some(last) = entries.last_mut() {
                last.1 += " ";
                last.1 += trimmed;
            }
        }
        entries
    }

    #[test]
    fn every_call_and_every_parameter_is_listed() {
        let entries = call_entries();
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, CALLS, "the calls, in the parser's order");
        for (name, entry) in &entries {
            let (keys, positional) = signature(name);
            for key in keys {
                assert!(
                    entry.contains(&format!(" {key} (")) || entry.contains(&format!("{key}=")),
                    "{name}: parameter `{key}` missing from {entry:?}"
                );
            }
            if let Some(p) = positional {
                assert!(
                    entry.starts_with(&format!("{name}({})", p.to_uppercase())),
                    "{name}: positional `{p}` not shown first in {entry:?}"
                );
            }
        }
    }

    #[test]
    fn every_example_parses() {
        let examples = SCHEDULE_GRAMMAR_HELP.split("Examples:\n").nth(1).unwrap();
        let mut n = 0;
        for line in examples.lines().map(str::trim).filter(|l| !l.is_empty()) {
            parse_schedule(line, 0.1).unwrap_or_else(|e| panic!("{line}: {e}"));
            n += 1;
        }
        assert!(n >= 10);
    }

    #[test]
    fn the_help_fits_an_80_column_terminal() {
        for line in SCHEDULE_GRAMMAR_HELP.lines() {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
    }
}
