//! The schedule grammar (see the module doc of `schedule`): syntax, and
//! assembly of parts into a [`Scheduler`].

use super::calls::{build_call, Built, CALLS};
use super::compose::{Chained, Sequential};
use super::decay::{check_lr, Constant};
use super::error::{Result, ScheduleError};
use super::lexer::{tokenize, Tok, Token};
use super::scheduler::{ScheduleUnit, Scheduler};
use super::Schedule;

/// A byte range of the spec, for carets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Span {
    pub offset: usize,
    pub len: usize,
}

impl From<Token> for Span {
    fn from(t: Token) -> Self {
        Span {
            offset: t.offset,
            len: t.len,
        }
    }
}

/// An argument value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Number(f64),
    Word(String),
    List(Vec<(f64, Span)>),
}

/// `key=value` or a positional value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arg {
    pub key: Option<(String, Span)>,
    pub value: Value,
    pub span: Span,
}

/// `name(args)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub name: String,
    pub span: Span,
    pub args: Vec<Arg>,
}

/// `call * call ... [for N]`.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    terms: Vec<Call>,
    length: Option<(u64, Span)>,
}

/// Parses a schedule spec (grammar in the `schedule` module doc) with
/// `base_lr` as the rate every part starts from.
///
/// Errors are [`ScheduleError::Parse`] with the offending token's position
/// and a caret line, except an invalid `base_lr` itself
/// ([`ScheduleError::Config`]). Never panics.
pub fn parse_schedule(spec: &str, base_lr: f64) -> Result<Scheduler> {
    check_lr("base_lr", base_lr)?;
    let mut p = Parser {
        spec,
        tokens: tokenize(spec)?,
        pos: 0,
    };
    let mut parts = vec![p.part()?];
    while p.eat_word("then") {
        parts.push(p.part()?);
    }
    let mut unit = None;
    if p.eat_word("per") {
        let t = p.next();
        unit = Some(match (t.kind, t.text(spec)) {
            (Tok::Ident, "step") => ScheduleUnit::Step,
            (Tok::Ident, "epoch") => ScheduleUnit::Epoch,
            _ => return Err(p.error(t, "expected `step` or `epoch` after `per`")),
        });
    }
    let end = p.next();
    if end.kind != Tok::End {
        return Err(p.error(end, "expected `*`, `for`, `then`, `per` or the end of the spec"));
    }
    assemble(&p, parts, base_lr, unit)
}

/// Turns parsed parts into a scheduler: a [`Sequential`] over the parts (or
/// the single part), and a plateau rule if the last part is `plateau`.
fn assemble(p: &Parser, parts: Vec<Part>, base_lr: f64, unit: Option<ScheduleUnit>) -> Result<Scheduler> {
    let count = parts.len();
    let mut schedules: Vec<Box<dyn Schedule>> = Vec::with_capacity(count);
    let mut milestones = Vec::with_capacity(count.saturating_sub(1));
    let mut elapsed: u64 = 0;
    let mut plateau = None;
    for (i, part) in parts.into_iter().enumerate() {
        let last = i + 1 == count;
        let first_span = part.terms[0].span;
        if let Some((_, span)) = part.length.filter(|_| last) {
            return Err(p.reject(span, "`for N` only goes before `then`; the last part runs to the end"));
        }
        let (schedule, natural) = build_part(p, &part, base_lr)?;
        let schedule = match schedule {
            Built::Plateau(rule) if last && part.terms.len() == 1 => {
                plateau = Some(rule);
                Box::new(Constant::new(base_lr)?)
            }
            Built::Plateau(_) => {
                let why = "`plateau` has no length: it can only be the whole last part, after `then`";
                return Err(p.reject(first_span, why));
            }
            Built::Schedule(s) => s,
        };
        schedules.push(schedule);
        if last {
            break;
        }
        let length = match (part.length, natural) {
            (Some((n, _)), _) => n,
            (None, Some(n)) => n,
            (None, None) => {
                let name = &part.terms[0].name;
                let why = format!("`{name}` has no natural length; write `{name}(...) for N then ...`");
                return Err(p.reject(first_span, &why));
            }
        };
        let span = part.length.map_or(first_span, |(_, s)| s);
        elapsed = elapsed
            .checked_add(length)
            .ok_or_else(|| p.reject(span, "the parts add up to more than 2^64 steps"))?;
        milestones.push(elapsed);
    }
    let schedule: Box<dyn Schedule> = if schedules.len() == 1 {
        schedules.pop().unwrap_or_else(|| Box::new(base_lr))
    } else {
        Box::new(Sequential::new(schedules, milestones.clone())?)
    };
    let default_unit = if plateau.is_some() {
        ScheduleUnit::Epoch
    } else {
        ScheduleUnit::Step
    };
    let plateau_after = if plateau.is_some() {
        milestones.last().copied().unwrap_or(0)
    } else {
        0
    };
    Ok(Scheduler {
        schedule,
        plateau,
        plateau_after,
        unit: unit.unwrap_or(default_unit),
    })
}

/// Builds one part: a single call at `base_lr`, or a product of calls at 1
/// scaled by `base_lr`. Returns the natural length too (longest term's).
fn build_part(p: &Parser, part: &Part, base_lr: f64) -> Result<(Built, Option<u64>)> {
    if let [call] = part.terms.as_slice() {
        return build_call(p.spec, call, base_lr);
    }
    let mut factors = Vec::with_capacity(part.terms.len());
    let mut natural: Option<u64> = None;
    for call in &part.terms {
        match build_call(p.spec, call, 1.0)? {
            (Built::Schedule(s), n) => {
                factors.push(s);
                natural = natural.max(n);
            }
            (Built::Plateau(_), _) => {
                return Err(p.reject(call.span, "`plateau` cannot be multiplied; put it last, after `then`"));
            }
        }
    }
    let product: Box<dyn Schedule> = Box::new(Chained::new(base_lr, factors)?);
    Ok((Built::Schedule(product), natural))
}

/// A recursive-descent parser over the tokens.
struct Parser<'a> {
    spec: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Token {
        let end = Token {
            kind: Tok::End,
            offset: self.spec.len(),
            len: 0,
        };
        self.tokens.get(self.pos + ahead).copied().unwrap_or(end)
    }

    fn next(&mut self) -> Token {
        let t = self.peek();
        self.pos = (self.pos + 1).min(self.tokens.len());
        t
    }

    /// Consumes the keyword `word` if it is next.
    fn eat_word(&mut self, word: &str) -> bool {
        let t = self.peek();
        let hit = t.kind == Tok::Ident && t.text(self.spec) == word;
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn error(&self, at: impl Into<Span>, message: &str) -> ScheduleError {
        let at = at.into();
        ScheduleError::Parse {
            spec: self.spec.to_string(),
            offset: at.offset,
            len: at.len,
            message: format!("{message}, found {}", describe(self.spec, at)),
        }
    }

    /// An error about a well-formed token that does not fit (no "found" suffix).
    fn reject(&self, at: impl Into<Span>, message: &str) -> ScheduleError {
        let at = at.into();
        ScheduleError::Parse {
            spec: self.spec.to_string(),
            offset: at.offset,
            len: at.len,
            message: message.to_string(),
        }
    }

    /// `product [for N]`.
    fn part(&mut self) -> Result<Part> {
        let mut terms = vec![self.call()?];
        while self.peek().kind == Tok::Star {
            self.next();
            terms.push(self.call()?);
        }
        let mut length = None;
        if self.eat_word("for") {
            let t = self.next();
            let n = match t.kind {
                Tok::Number(v) => whole(v),
                _ => None,
            };
            match n {
                Some(n) if n > 0 => length = Some((n, t.into())),
                _ => return Err(self.error(t, "expected a whole number of steps >= 1 after `for`")),
            }
        }
        Ok(Part { terms, length })
    }

    /// `NAME [( args )]`.
    fn call(&mut self) -> Result<Call> {
        let t = self.next();
        let name = t.text(self.spec);
        if t.kind != Tok::Ident || ["then", "for", "per"].contains(&name) {
            return Err(self.error(t, "expected a schedule name such as `cosine(1000)`"));
        }
        if !CALLS.contains(&name) {
            let message = format!("unknown schedule `{name}`; expected one of {}", CALLS.join(", "));
            return Err(self.reject(t, &message));
        }
        let mut call = Call {
            name: name.to_string(),
            span: t.into(),
            args: Vec::new(),
        };
        if self.peek().kind != Tok::LParen {
            return Ok(call);
        }
        self.next();
        loop {
            if self.peek().kind == Tok::RParen {
                self.next();
                return Ok(call);
            }
            call.args.push(self.arg()?);
            let t = self.next();
            match t.kind {
                Tok::Comma => {}
                Tok::RParen => return Ok(call),
                _ => return Err(self.error(t, "expected `,` or `)` after an argument")),
            }
        }
    }

    /// `[KEY =] value`.
    fn arg(&mut self) -> Result<Arg> {
        let mut key = None;
        if self.peek().kind == Tok::Ident && self.peek_at(1).kind == Tok::Eq {
            let k = self.next();
            self.next();
            key = Some((k.text(self.spec).to_string(), k.into()));
        }
        let t = self.next();
        let (value, end) = match t.kind {
            Tok::Number(v) => (Value::Number(v), t),
            Tok::Ident => (Value::Word(t.text(self.spec).to_string()), t),
            Tok::LBracket => self.list()?,
            _ => return Err(self.error(t, "expected a value: a number, a word, or a list like [30, 80]")),
        };
        let span = Span {
            offset: t.offset,
            len: end.offset + end.len - t.offset,
        };
        Ok(Arg { key, value, span })
    }

    /// The rest of `[n, n, ...]` after `[`; returns the list and the `]` token.
    fn list(&mut self) -> Result<(Value, Token)> {
        let mut items = Vec::new();
        loop {
            let t = self.next();
            match t.kind {
                Tok::RBracket if items.is_empty() => return Ok((Value::List(items), t)),
                Tok::Number(v) => items.push((v, t.into())),
                _ => return Err(self.error(t, "expected a number in the list")),
            }
            let t = self.next();
            match t.kind {
                Tok::Comma => {}
                Tok::RBracket => return Ok((Value::List(items), t)),
                _ => return Err(self.error(t, "expected `,` or `]` in the list")),
            }
        }
    }
}

/// `v` as a whole number of steps, if it is one (up to 2^53, where f64 stops counting exactly).
pub(crate) fn whole(v: f64) -> Option<u64> {
    (v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_992.0).then_some(v as u64)
}

/// "`text`" or "the end of the spec", for error messages.
fn describe(spec: &str, at: Span) -> String {
    match spec.get(at.offset..at.offset + at.len) {
        Some(text) if !text.is_empty() => format!("`{text}`"),
        _ => "the end of the spec".to_string(),
    }
}
