//! CSV cells that a spreadsheet will not run: a cell beginning with `=`, `+`, `-`, `@`, a tab
//! or a carriage return is read as a formula by Excel, LibreOffice and Sheets, so it gets a
//! leading single quote (OWASP's rule for CSV injection). Every CSV export writes its rows
//! through [`row`]; the csv writer then quotes what needs quoting.

use std::borrow::Cow;

/// One cell, made inert.
pub fn cell(value: &str) -> Cow<'_, str> {
    match value.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{value}")),
        _ => Cow::Borrowed(value),
    }
}

/// A record's cells, made inert.
pub fn row<I, T>(cells: I) -> Vec<String>
where
    I: IntoIterator<Item = T>,
    T: AsRef<str>,
{
    cells
        .into_iter()
        .map(|c| cell(c.as_ref()).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_quoted_and_the_rest_kept() {
        for (given, want) in [
            (
                "=HYPERLINK(\"http://evil\")",
                "'=HYPERLINK(\"http://evil\")",
            ),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("plain", "plain"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(cell(given), want);
        }
        assert_eq!(row(["=1", "x"]), vec!["'=1".to_string(), "x".to_string()]);
    }
}
