//! Templates: `/v1/calls/{call}/end`, `Bearer {token}`. A `{name}` inserts a
//! value; `{{` and `}}` are literal braces. What a placeholder inserts into a
//! path or query is percent-encoded by the driver, so an id is always data,
//! never URL syntax.

/// Longest template, in bytes.
pub const TEMPLATE_LEN_MAX: usize = 4096;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text sent as is.
    Literal(String),
    /// A placeholder's name.
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Its pieces, in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Parse `text`; the error says what is wrong, without echoing the text.
    pub fn parse(text: &str) -> Result<Template, String> {
        if text.len() > TEMPLATE_LEN_MAX {
            return Err(format!("a template longer than {TEMPLATE_LEN_MAX} bytes"));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                            Some(c) => {
                                return Err(format!(
                                    "`{c}` inside a placeholder; names are letters, digits and `_` (write `{{{{` for a literal brace)"
                                ));
                            }
                            None => return Err("a `{` that is never closed".to_string()),
                        }
                    }
                    if name.is_empty() {
                        return Err("an empty placeholder `{}`".to_string());
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(name));
                }
                '}' => return Err("a `}` with no `{` (write `}}` for a literal brace)".to_string()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The placeholder names it uses.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The name, if the template is exactly one placeholder.
    pub fn only_var(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Var(v)] => Some(v),
            _ => None,
        }
    }

    /// Render with `lookup`, passing each inserted value through `encode`;
    /// `None` if a placeholder has no value.
    pub fn render(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
        encode: &dyn Fn(&str) -> String,
    ) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(name) => out.push_str(&encode(&lookup(name)?)),
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_render_and_refuse_bad_braces() {
        let t = Template::parse("/v1/calls/{call}/end?x={{y}}").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), vec!["call"]);
        let lookup = |n: &str| (n == "call").then(|| "a/b".to_string());
        let encoded = t.render(&lookup, &|v| v.replace('/', "%2F")).unwrap();
        assert_eq!(encoded, "/v1/calls/a%2Fb/end?x={y}");
        assert_eq!(
            Template::parse("{media}").unwrap().only_var(),
            Some("media")
        );
        for bad in ["{", "}", "{}", "{a b}", "{a", "x}"] {
            assert!(Template::parse(bad).is_err(), "{bad:?} accepted");
        }
        let missing = Template::parse("{nope}").unwrap();
        assert_eq!(missing.render(&lookup, &|v| v.to_string()), None);
    }
}
