//! CSV exports of accounts, friends and group members. The header row names the columns; common
//! vendor and hand-made names are mapped to canonical fields, and the mapping is shown to the user
//! before anything is imported.

use super::ConvertError;
use serde_json::{Map, Value};

/// What a CSV file holds, one canonical kind per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvKind {
    Account,
    Friend,
    Member,
}

impl CsvKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CsvKind::Account => "account",
            CsvKind::Friend => "friend",
            CsvKind::Member => "member",
        }
    }

    /// (canonical field, accepted column names), first match wins; the first entries are required.
    fn fields(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            CsvKind::Account => &[
                (
                    "id",
                    &[
                        "id", "user_id", "userid", "accid", "uid", "account", "username",
                    ],
                ),
                ("nick", &["nick", "nickname", "name", "display_name"]),
                ("avatar", &["avatar", "icon", "avatar_url", "head_url"]),
                ("gender", &["gender", "sex"]),
                ("birthday", &["birthday", "birth"]),
                ("signature", &["signature", "sign", "bio"]),
                ("location", &["location", "city"]),
                (
                    "created_at",
                    &["created_at", "create_time", "created", "register_time"],
                ),
            ],
            CsvKind::Friend => &[
                (
                    "owner",
                    &["owner", "user", "user_id", "accid", "uid", "account"],
                ),
                (
                    "friend",
                    &[
                        "friend",
                        "friend_id",
                        "faccid",
                        "friend_accid",
                        "friend_uid",
                    ],
                ),
                ("remark", &["remark", "alias"]),
                ("groups", &["groups", "group", "tags"]),
                ("source", &["source", "add_source"]),
                (
                    "added_at",
                    &["added_at", "add_time", "created_at", "create_time"],
                ),
            ],
            CsvKind::Member => &[
                ("group", &["group", "group_id", "tid", "gid"]),
                (
                    "account",
                    &[
                        "account",
                        "member",
                        "member_id",
                        "accid",
                        "user_id",
                        "uid",
                        "user",
                    ],
                ),
                ("role", &["role", "type"]),
                (
                    "joined_at",
                    &["joined_at", "join_time", "jointime", "created_at"],
                ),
                ("nick", &["nick", "nickname", "group_nick", "name"]),
                ("muted_until", &["muted_until", "mute_until"]),
                ("unread", &["unread", "unread_count"]),
            ],
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            CsvKind::Account => &["id"],
            CsvKind::Friend => &["owner", "friend"],
            CsvKind::Member => &["group", "account"],
        }
    }

    fn parse_hint(hint: &str) -> Option<CsvKind> {
        match hint.trim().to_ascii_lowercase().as_str() {
            "account" | "accounts" | "user" | "users" => Some(CsvKind::Account),
            "friend" | "friends" => Some(CsvKind::Friend),
            "member" | "members" | "group_member" | "group_members" => Some(CsvKind::Member),
            _ => None,
        }
    }
}

/// Reads the rows of one CSV file whose header it was built from.
#[derive(Clone, Debug)]
pub struct CsvConverter {
    kind: CsvKind,
    delimiter: u8,
    /// One entry per column, in header order: (column name as written, canonical target).
    columns: Vec<(String, String)>,
}

fn normalize(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
}

fn split(line: &str, delimiter: u8) -> Result<Vec<String>, ConvertError> {
    let mut r = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(line.as_bytes());
    match r.records().next() {
        None => Ok(Vec::new()),
        Some(Ok(rec)) => Ok(rec.iter().map(str::to_string).collect()),
        Some(Err(e)) => Err(ConvertError::new(
            "json.syntax",
            format!("not a CSV row: {e}"),
        )),
    }
}

impl CsvConverter {
    /// Maps the header's columns. `kind_hint` (`account`, `friend`, `member`) settles what the
    /// file holds; without it the columns decide (a friend column → friends, a group column →
    /// members, else accounts).
    pub fn new(header_line: &str, kind_hint: Option<&str>) -> Result<Self, ConvertError> {
        let header = header_line.trim_end_matches(['\r', '\n']);
        // Tab- and semicolon-separated exports are common (Excel in many locales writes `;`).
        let delimiter = if header.contains('\t') && !header.contains(',') {
            b'\t'
        } else if header.contains(';') && !header.contains(',') {
            b';'
        } else {
            b','
        };
        let names = split(header, delimiter)?;
        if names.iter().all(|n| normalize(n).is_empty()) {
            return Err(ConvertError::missing(
                "header",
                "the first row must name the columns",
            ));
        }
        let norm: Vec<String> = names.iter().map(|n| normalize(n)).collect();
        let kind = match kind_hint {
            Some(h) => CsvKind::parse_hint(h).ok_or_else(|| {
                ConvertError::value(
                    "kind",
                    format!("= {h:?}; a CSV file holds account, friend or member records"),
                )
            })?,
            None => {
                let has = |k: CsvKind, field: &str| {
                    k.fields()
                        .iter()
                        .find(|(f, _)| *f == field)
                        .is_some_and(|(_, aliases)| {
                            norm.iter().any(|n| aliases.contains(&n.as_str()))
                        })
                };
                if has(CsvKind::Friend, "friend") {
                    CsvKind::Friend
                } else if has(CsvKind::Member, "group") {
                    CsvKind::Member
                } else if has(CsvKind::Account, "id") {
                    CsvKind::Account
                } else {
                    return Err(ConvertError::missing(
                        "header",
                        &format!(
                            "no column names an account (id, user_id, accid, uid), a friend (friend, friend_id) or a group (group_id, tid); the columns are {}",
                            names.join(", ")
                        ),
                    ));
                }
            }
        };
        let mut columns = Vec::with_capacity(names.len());
        let mut taken: Vec<&str> = Vec::new();
        for (name, n) in names.iter().zip(&norm) {
            if n.is_empty() {
                return Err(ConvertError::value(
                    "header",
                    format!("column {} has no name", columns.len() + 1),
                ));
            }
            if n == "kind" {
                return Err(ConvertError::value("header", "has a `kind` column; the kind is the whole file's, set it with the kind choice"));
            }
            let field = kind
                .fields()
                .iter()
                .find(|(f, aliases)| !taken.contains(f) && aliases.contains(&n.as_str()))
                .map(|(f, _)| *f);
            let target = match field {
                Some(f) => {
                    taken.push(f);
                    f.to_string()
                }
                // Columns without a canonical field are kept, never dropped: an account's go to
                // `custom`, other kinds keep them as extra fields (the validator warns once).
                None if kind == CsvKind::Account => format!("custom.{}", name.trim()),
                None => name.trim().to_string(),
            };
            columns.push((name.trim().to_string(), target));
        }
        let missing: Vec<&str> = kind
            .required()
            .iter()
            .copied()
            .filter(|f| !taken.contains(f))
            .collect();
        if !missing.is_empty() {
            let hint: Vec<String> = missing
                .iter()
                .map(|m| {
                    let aliases = kind
                        .fields()
                        .iter()
                        .find(|(f, _)| f == m)
                        .map(|(_, a)| a.join("/"))
                        .unwrap_or_default();
                    format!("`{m}` ({aliases})")
                })
                .collect();
            return Err(ConvertError::missing(
                "header",
                &format!(
                    "a {} file needs a column for {}; the columns are {}",
                    kind.as_str(),
                    hint.join(" and "),
                    names.join(", ")
                ),
            ));
        }
        Ok(CsvConverter {
            kind,
            delimiter,
            columns,
        })
    }

    pub fn kind(&self) -> CsvKind {
        self.kind
    }

    /// (column as written in the header, canonical field it fills), in header order.
    pub fn mapping(&self) -> Vec<(String, String)> {
        self.columns.clone()
    }

    /// The separator the header uses (comma, tab or semicolon).
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Converts one data row into one canonical record (none for an empty row).
    pub fn convert_row(&self, row: &str) -> Result<Vec<Value>, ConvertError> {
        let row = row.trim_end_matches(['\r', '\n']);
        if row.trim().is_empty() {
            return Ok(Vec::new());
        }
        let cells = split(row, self.delimiter)?;
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        self.convert_cells(&cells)
    }

    /// Converts one record's cells, as a CSV reader split them, into one canonical record.
    pub fn convert_cells(&self, cells: &[&str]) -> Result<Vec<Value>, ConvertError> {
        if cells.len() != self.columns.len() {
            return Err(ConvertError::value(
                "row",
                format!(
                    "has {} cells but the header has {} columns ({}); quote cells that contain the separator",
                    cells.len(),
                    self.columns.len(),
                    self.columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let mut o = Map::new();
        o.insert("kind".into(), self.kind.as_str().into());
        let mut custom = Map::new();
        for ((column, target), cell) in self.columns.iter().zip(cells) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            let v = self.cell(column, target, cell)?;
            match target.strip_prefix("custom.") {
                Some(key) => {
                    custom.insert(key.to_string(), v);
                }
                None => {
                    o.insert(target.clone(), v);
                }
            }
        }
        if !custom.is_empty() {
            o.insert("custom".into(), Value::Object(custom));
        }
        for f in self.kind.required() {
            if !o.contains_key(*f) {
                let column = self
                    .columns
                    .iter()
                    .find(|c| c.1 == *f)
                    .map(|c| c.0.as_str())
                    .unwrap_or(f);
                return Err(ConvertError::missing(
                    &format!("{f} (column `{column}`)"),
                    &format!(
                        "the cell is empty; every {} row needs it",
                        self.kind.as_str()
                    ),
                ));
            }
        }
        Ok(vec![Value::Object(o)])
    }

    fn cell(&self, column: &str, target: &str, cell: &str) -> Result<Value, ConvertError> {
        let field = format!("{target} (column `{column}`)");
        Ok(match target {
            "created_at" | "added_at" | "joined_at" | "muted_until" => {
                Value::from(time_ms(cell, &field)?)
            }
            "unread" => Value::from(cell.parse::<i64>().map_err(|_| {
                ConvertError::type_(&field, "a whole number", &Value::String(cell.into()))
            })?),
            "gender" => match cell.to_ascii_lowercase().as_str() {
                "male" | "m" | "1" | "男" => "male",
                "female" | "f" | "2" | "女" => "female",
                "unknown" | "0" | "u" | "未知" => "unknown",
                _ => {
                    return Err(ConvertError::value(
                        &field,
                        format!("= {cell:?}; use male, female or unknown (or m/f, 1/2/0)"),
                    ))
                }
            }
            .into(),
            "role" if self.kind == CsvKind::Member => match cell.to_ascii_lowercase().as_str() {
                "owner" | "群主" => "owner",
                "admin" | "manager" | "administrator" | "管理员" => "admin",
                "member" | "normal" | "成员" => "member",
                _ => {
                    return Err(ConvertError::value(
                        &field,
                        format!("= {cell:?}; use owner, admin or member"),
                    ))
                }
            }
            .into(),
            "groups" => Value::Array(
                cell.split(['|', ';'])
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(Value::from)
                    .collect(),
            ),
            _ => Value::from(cell),
        })
    }
}

/// Milliseconds from digits (passed on; the canonical parser handles seconds) or an RFC 3339 time.
fn time_ms(cell: &str, field: &str) -> Result<i64, ConvertError> {
    if let Ok(n) = cell.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(cell, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ConvertError::type_(
                field,
                "milliseconds since 1970 or an RFC 3339 time (2024-05-01T08:00:00Z)",
                &Value::String(cell.into()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dumps::formats::testutil::assert_canonical;
    use serde_json::json;

    fn rows(c: &CsvConverter, rows: &[&str]) -> Vec<Value> {
        rows.iter()
            .flat_map(|r| c.convert_row(r).unwrap_or_else(|e| panic!("{r}: {e}")))
            .inspect(assert_canonical)
            .collect()
    }

    #[test]
    fn accounts_with_aliases_and_custom_columns() {
        let c = CsvConverter::new(
            "\u{feff}accid,Nickname,icon,sex,create_time,level\r\n",
            None,
        )
        .unwrap();
        assert_eq!(c.kind(), CsvKind::Account);
        assert_eq!(
            c.mapping(),
            [
                ("accid", "id"),
                ("Nickname", "nick"),
                ("icon", "avatar"),
                ("sex", "gender"),
                ("create_time", "created_at"),
                ("level", "custom.level")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let v = rows(
            &c,
            &[
                "u1,\"Alice, A.\",https://x/a.png,2,1513685265481,3\r\n",
                "u2,,,,2024-05-01T08:00:00Z,",
            ],
        );
        assert_eq!(
            v[0],
            json!({"kind":"account","id":"u1","nick":"Alice, A.","avatar":"https://x/a.png","gender":"female","created_at":1513685265481_i64,"custom":{"level":"3"}})
        );
        assert_eq!(
            v[1],
            json!({"kind":"account","id":"u2","created_at":1714550400000_i64})
        );
    }

    #[test]
    fn friends_and_members() {
        let f = CsvConverter::new("user,friend_id,alias,groups", None).unwrap();
        assert_eq!(f.kind(), CsvKind::Friend);
        assert_eq!(
            rows(&f, &["u1,u2,Bob,Work|Gym"]),
            vec![
                json!({"kind":"friend","owner":"u1","friend":"u2","remark":"Bob","groups":["Work","Gym"]})
            ]
        );
        let m = CsvConverter::new("tid\taccid\trole\tjoin_time", None).unwrap();
        assert_eq!(m.kind(), CsvKind::Member);
        assert_eq!(
            rows(&m, &["g1\tu1\tmanager\t1513685265481", ""]),
            vec![
                json!({"kind":"member","group":"g1","account":"u1","role":"admin","joined_at":1513685265481_i64})
            ]
        );
        // The hint decides when the columns alone would not.
        let m = CsvConverter::new("group;member", Some("members")).unwrap();
        assert_eq!(
            rows(&m, &["g1;u9"]),
            vec![json!({"kind":"member","group":"g1","account":"u9"})]
        );
    }

    #[test]
    fn bad_headers_and_rows_say_what_is_wrong() {
        let e = CsvConverter::new("foo,bar", None).unwrap_err();
        assert!(e.message.contains("foo, bar"), "{e}");
        let e = CsvConverter::new("nick,avatar", Some("account")).unwrap_err();
        assert!(e.message.contains("`id`"), "{e}");
        let e = CsvConverter::new("owner,remark", Some("friend")).unwrap_err();
        assert!(e.message.contains("`friend`"), "{e}");
        assert_eq!(
            CsvConverter::new("id", Some("message")).unwrap_err().code,
            "field.value"
        );

        let c = CsvConverter::new("uid,gender,created_at", None).unwrap();
        let e = c.convert_row("u1,f").unwrap_err();
        assert!(
            e.message.contains("2 cells") && e.message.contains("3 columns"),
            "{e}"
        );
        let e = c.convert_row(",male,").unwrap_err();
        assert!(e.message.contains("column `uid`"), "{e}");
        let e = c.convert_row("u1,robot,").unwrap_err();
        assert!(e.message.contains("column `gender`"), "{e}");
        let e = c.convert_row("u1,male,last week").unwrap_err();
        assert_eq!(e.code, "field.type", "{e}");
    }
}
