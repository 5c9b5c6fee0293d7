//! Message placeholders: `{district}` or `{Column}` filled per recipient.
//!
//! `{district}` is the subscriber's district; any other name is a column kept from the
//! imported CSV (matched as written, or ignoring case and diacritics). `{{` and `}}` are a
//! literal brace. A recipient without a value for a placeholder is never sent a message with a
//! hole in it: campaign creation refuses the list, and a member added later is rejected with
//! the reason.

use anyhow::{Result, bail};

use crate::district::fold_key;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// A recipient's values, as stored: district plus the CSV's extra columns (a JSON object).
pub struct Fields<'a> {
    pub district: Option<&'a str>,
    pub attributes: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<String> {
        if fold_key(name) == "district" || fold_key(name) == "huyen" {
            return self
                .district
                .filter(|d| !d.trim().is_empty())
                .map(str::to_string);
        }
        let attrs = self.attributes?;
        let value = attrs.get(name).or_else(|| {
            let key = fold_key(name);
            attrs
                .iter()
                .find(|(k, _)| fold_key(k) == key)
                .map(|(_, v)| v)
        })?;
        let s = match value {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Null => return None,
            other => other.to_string(),
        };
        (!s.is_empty()).then_some(s)
    }
}

impl Template {
    pub fn parse(text: &str) -> Result<Self> {
        let mut pieces = Vec::new();
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
                            Some('{') | None => bail!(
                                "the message has an unclosed placeholder after {{{name}: write {{name}} for a value, or {{{{ for a literal brace"
                            ),
                            Some(c) => name.push(c),
                        }
                    }
                    let name = name.trim().to_string();
                    if name.is_empty() {
                        bail!(
                            "the message has an empty placeholder {{}}: name a column, e.g. {{district}}"
                        );
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Field(name));
                }
                '}' => bail!("the message has a lone '}}': write }}}} for a literal brace"),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self { pieces })
    }

    /// The placeholder names, in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.pieces {
            if let Piece::Field(name) = p
                && !out.contains(&name.as_str())
            {
                out.push(name);
            }
        }
        out
    }

    /// The text as it goes out, literal braces unescaped (`{{` → `{`), each placeholder
    /// left as `{name}`: for a plain message exactly what is sent, and what is counted.
    pub fn as_sent(&self) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(name) => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            }
        }
        out
    }

    pub fn is_personalised(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Field(_)))
    }

    /// The text for one recipient; `Err` names the first placeholder without a value.
    /// `fold` removes diacritics from the values (for a campaign sent without them).
    pub fn render(&self, fields: &Fields<'_>, fold: bool) -> std::result::Result<String, String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(name) => match fields.get(name) {
                    Some(v) if fold => out.push_str(&crate::encoding::fold_diacritics(&v)),
                    Some(v) => out.push_str(&v),
                    None => return Err(name.clone()),
                },
            }
        }
        Ok(out)
    }
}

/// Parses a stored attributes column.
pub fn parse_attributes(raw: Option<&str>) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(raw?) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(json: &str) -> serde_json::Map<String, serde_json::Value> {
        parse_attributes(Some(json)).unwrap()
    }

    #[test]
    fn renders_district_and_columns() {
        let t = Template::parse("Kính gửi {Họ tên} ở {district}: {{không}} ma túy").unwrap();
        assert_eq!(t.placeholders(), ["Họ tên", "district"]);
        let a = attrs(r#"{"họ tên": "Nguyễn Văn A"}"#);
        let f = Fields {
            district: Some("Đức Hòa"),
            attributes: Some(&a),
        };
        assert_eq!(
            t.render(&f, false).unwrap(),
            "Kính gửi Nguyễn Văn A ở Đức Hòa: {không} ma túy"
        );
        assert_eq!(
            t.render(&f, true).unwrap(),
            "Kính gửi Nguyen Van A ở Duc Hoa: {không} ma túy"
        );
    }

    #[test]
    fn as_sent_unescapes_literal_braces_only() {
        let t = Template::parse("a {{b}} {district} c").unwrap();
        assert_eq!(t.as_sent(), "a {b} {district} c");
    }

    #[test]
    fn missing_values_are_named() {
        let t = Template::parse("{district} {ten}").unwrap();
        let f = Fields {
            district: Some("  "),
            attributes: None,
        };
        assert_eq!(t.render(&f, false), Err("district".to_string()));
        let a = attrs(r#"{"ten": ""}"#);
        let f = Fields {
            district: Some("Tân An"),
            attributes: Some(&a),
        };
        assert_eq!(t.render(&f, false), Err("ten".to_string()));
    }

    #[test]
    fn plain_text_is_not_personalised_and_bad_braces_are_errors() {
        let t = Template::parse("Hưởng ứng Tháng hành động").unwrap();
        assert!(!t.is_personalised());
        assert_eq!(
            t.render(
                &Fields {
                    district: None,
                    attributes: None
                },
                false
            )
            .unwrap(),
            "Hưởng ứng Tháng hành động"
        );
        assert!(Template::parse("a {b").is_err());
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("a {} b").is_err());
    }
}

/// What a personalised message comes to over a whole list.
#[derive(Debug)]
pub struct ListCheck {
    pub recipients: u64,
    /// Per placeholder: recipients without a value, and one of them (masked) as an example.
    pub missing: Vec<(String, u64, String)>,
    /// The costliest rendering (most segments, then most characters).
    pub worst: Option<crate::encoding::Analysis>,
    /// Recipients whose text needs UCS-2.
    pub ucs2: u64,
}

/// Renders the template for every member of `list` (in pages) without sending anything.
pub async fn check_list(
    store: &dyn crate::store::Store,
    list: &str,
    template: &Template,
    fold: bool,
) -> Result<ListCheck> {
    let mut check = ListCheck {
        recipients: 0,
        missing: Vec::new(),
        worst: None,
        ucs2: 0,
    };
    let mut after = 0;
    let mut worst_key = (0, 0);
    loop {
        let page = store.list_members_page(list, after, 5_000).await?;
        let Some(last) = page.last() else { break };
        after = last.subscriber_id;
        for m in &page {
            check.recipients += 1;
            let attrs = parse_attributes(m.attributes.as_deref());
            let fields = Fields {
                district: m.district.as_deref(),
                attributes: attrs.as_ref(),
            };
            match template.render(&fields, fold) {
                Ok(text) => {
                    let a = crate::encoding::analyze(&text);
                    if a.encoding == crate::encoding::Encoding::Ucs2 {
                        check.ucs2 += 1;
                    }
                    let key = (a.segments, a.units);
                    if key > worst_key || check.worst.is_none() {
                        worst_key = key;
                        check.worst = Some(a);
                    }
                }
                Err(name) => match check.missing.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(entry) => entry.1 += 1,
                    None => {
                        let example = crate::msisdn::Msisdn::from_canonical(&m.msisdn)
                            .map_or_else(|| "?".into(), |n| n.masked());
                        check.missing.push((name, 1, example));
                    }
                },
            }
        }
    }
    Ok(check)
}
