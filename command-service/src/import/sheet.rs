//! Reading an uploaded file into a header row and typed cells: .xlsx with calamine (the first
//! sheet), CSV with the `csv` crate (UTF-8 with or without a byte-order mark, comma or
//! semicolon, quoted newlines). Typed values are read the way a spreadsheet user means them:
//! Excel dates and numbers as such, "$1,200.50" as an amount, "12%" as a percentage.

use std::io::Cursor;

use calamine::{Data, Reader};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;

/// Most data rows a sheet may hold.
pub const MAX_ROWS: usize = 10_000;
/// Most sheets of one workbook an import reads (every sheet with the first sheet's header row).
pub const MAX_SHEETS: usize = 20;
/// Largest file accepted.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
const MAX_COLUMNS: usize = 200;
const MAX_CELL_CHARS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    DateTime(NaiveDateTime),
}

impl Cell {
    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(text) => text.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as the text a person sees.
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.trim().to_owned(),
            Cell::Number(number) if number.fract() == 0.0 && number.abs() < 1e15 => format!("{}", *number as i64),
            Cell::Number(number) => number.to_string(),
            Cell::Bool(value) => value.to_string(),
            Cell::DateTime(at) if at.time() == chrono::NaiveTime::MIN => at.date().to_string(),
            Cell::DateTime(at) => at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        }
    }

    /// An amount: a number, or text such as "$1,200.50", "1.200,50 €" or "(300)".
    pub fn decimal(&self) -> Option<Decimal> {
        match self {
            Cell::Number(number) => Decimal::from_f64_retain(*number).map(|amount| amount.round_dp(2)),
            // A percentage is no amount.
            Cell::Text(text) if text.trim_end().ends_with('%') => None,
            Cell::Text(text) => parse_amount(text),
            _ => None,
        }
    }

    /// A number; "12%" reads as 12 (a percentage cell formatted as such reads as 0.12 in the
    /// workbook and is scaled by [`Cell::percent`]).
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(number) => Some(*number),
            Cell::Text(text) => {
                let text = text.trim().trim_end_matches('%').trim();
                parse_amount(text).and_then(|amount| amount.to_string().parse().ok())
            }
            _ => None,
        }
    }

    /// A percentage in points: "12%" and 12 are 12; a workbook cell 0.12 formatted as a percent
    /// arrives as 0.12 and is read as 12.
    pub fn percent(&self) -> Option<f64> {
        match self {
            Cell::Number(number) if number.abs() <= 1.0 => Some(number * 100.0),
            other => other.number(),
        }
    }

    pub fn bool(&self) -> Option<bool> {
        match self {
            Cell::Bool(value) => Some(*value),
            Cell::Number(number) => Some(*number != 0.0),
            Cell::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "yes" | "y" | "true" | "1" | "x" => Some(true),
                "no" | "n" | "false" | "0" | "" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn date(&self) -> Option<NaiveDate> {
        match self {
            Cell::DateTime(at) => Some(at.date()),
            Cell::Text(text) => parse_date(text.trim()),
            _ => None,
        }
    }

    /// An instant; a date alone is noon UTC that day (so it stays on that day everywhere).
    pub fn instant(&self) -> Option<DateTime<Utc>> {
        match self {
            Cell::DateTime(at) if at.time() == chrono::NaiveTime::MIN => {
                Some(at.date().and_hms_opt(12, 0, 0)?.and_utc())
            }
            Cell::DateTime(at) => Some(at.and_utc()),
            Cell::Text(text) => {
                let text = text.trim();
                if let Ok(at) = DateTime::parse_from_rfc3339(text) {
                    return Some(at.with_timezone(&Utc));
                }
                for format in [
                    "%Y-%m-%d %H:%M:%S",
                    "%Y-%m-%d %H:%M",
                    "%Y-%m-%dT%H:%M:%S",
                    "%Y-%m-%dT%H:%M",
                ] {
                    if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
                        return Some(at.and_utc());
                    }
                }
                parse_date(text).and_then(|day| Some(day.and_hms_opt(12, 0, 0)?.and_utc()))
            }
            _ => None,
        }
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d %b %Y", "%b %d, %Y"]
        .iter()
        .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
}

/// "$1,200.50", "1 200,50 €", "(300.00)", "-45" as decimals. A comma followed by exactly two
/// digits at the end (and no dot after it) is a decimal comma.
fn parse_amount(text: &str) -> Option<Decimal> {
    let mut text = text.trim().to_owned();
    let negative = text.starts_with('(') && text.ends_with(')');
    if negative {
        text = text[1..text.len() - 1].to_owned();
    }
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'))
        .collect();
    if cleaned.is_empty() || text.chars().any(|c| c.is_alphabetic() && !"USDEURGBP".contains(c)) {
        return None;
    }
    // The later of '.' and ',' is the decimal separator when both appear; a lone ',' with one
    // or two digits after it is a decimal comma; several of one kind are thousands separators.
    let (dot, comma) = (cleaned.rfind('.'), cleaned.rfind(','));
    let decimal_comma = match (dot, comma) {
        (Some(dot), Some(comma)) => comma > dot,
        (None, Some(at)) => cleaned.matches(',').count() == 1 && (2..=3).contains(&(cleaned.len() - at)),
        _ => false,
    };
    let normalized = if decimal_comma {
        cleaned.replace('.', "").replace(',', ".")
    } else if cleaned.matches('.').count() > 1 {
        cleaned.replace(['.', ','], "")
    } else {
        cleaned.replace(',', "")
    };
    let amount: Decimal = normalized.parse().ok()?;
    Some(if negative { -amount } else { amount })
}

/// A file read into its header row and data rows (blank rows dropped, with their numbers kept).
/// A workbook's sheets that share the first sheet's header row are read one after the other, so
/// one import can hold more than one sheet's 10,000 rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
    /// Sheets left out because their header row differs from the first sheet's.
    pub ignored_sheets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The worksheet's name (none for CSV).
    pub sheet: Option<String>,
    /// The row's number in its sheet, the header being row 1.
    pub number: usize,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SheetError {
    #[error("the file is neither an .xlsx workbook nor CSV text: {0}")]
    Unreadable(String),
    #[error("the file has no header row")]
    NoHeader,
    #[error("the sheet has more than {MAX_ROWS} data rows")]
    TooManyRows,
    #[error("the sheet has more than {MAX_COLUMNS} columns")]
    TooManyColumns,
    #[error("the workbook has more than {MAX_SHEETS} sheets")]
    TooManySheets,
    #[error("a header holds the NUL character (U+0000)")]
    NulInHeader,
}

/// The format a file is read as: an .xlsx by its name or its zip signature, otherwise CSV.
pub fn format_of(file_name: &str, bytes: &[u8]) -> &'static str {
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".xlsx") || lower.ends_with(".xlsm") || bytes.starts_with(b"PK\x03\x04") {
        "xlsx"
    } else {
        "csv"
    }
}

pub fn read(file_name: &str, bytes: &[u8]) -> Result<Sheet, SheetError> {
    let grids = match format_of(file_name, bytes) {
        "xlsx" => read_xlsx(bytes)?,
        _ => vec![(None, read_csv(bytes)?)],
    };
    // Each sheet's header row (its first non-blank row, trailing blanks dropped) and the rows
    // below it.
    let mut sheets = Vec::new();
    for (name, grid) in grids {
        let mut numbered = grid.into_iter().enumerate().map(|(index, row)| (index + 1, row));
        let Some((_, header)) = numbered.find(|(_, row)| row.iter().any(|cell| !cell.is_empty())) else {
            continue;
        };
        if header.len() > MAX_COLUMNS {
            return Err(SheetError::TooManyColumns);
        }
        let mut headers: Vec<String> = header.iter().map(Cell::text).collect();
        if headers.iter().any(|header| header.contains('\0')) {
            return Err(SheetError::NulInHeader);
        }
        while headers.last().is_some_and(String::is_empty) {
            headers.pop();
        }
        let rows: Vec<(usize, Vec<Cell>)> = numbered.filter(|(_, row)| !row.iter().all(Cell::is_empty)).collect();
        sheets.push((name, headers, rows));
    }
    // The header row is the widest one of a sheet with data (a cover sheet has a title, not a
    // header); sheets with data under another header row are left out and named.
    let headers = sheets
        .iter()
        .filter(|(_, _, rows)| !rows.is_empty())
        .min_by_key(|(_, headers, _)| std::cmp::Reverse(headers.iter().filter(|h| !h.is_empty()).count()))
        .or_else(|| sheets.first())
        .map(|(_, headers, _)| headers.clone())
        .ok_or(SheetError::NoHeader)?;
    let mut rows = Vec::new();
    let mut ignored_sheets = Vec::new();
    for (name, sheet_headers, data) in sheets {
        if sheet_headers != headers {
            if !data.is_empty() {
                ignored_sheets.extend(name);
            }
            continue;
        }
        if data.len() > MAX_ROWS {
            return Err(SheetError::TooManyRows);
        }
        for (number, mut cells) in data {
            cells.resize(headers.len().max(cells.len()), Cell::Empty);
            for cell in &mut cells {
                if let Cell::Text(text) = cell {
                    if text.chars().count() > MAX_CELL_CHARS {
                        *text = text.chars().take(MAX_CELL_CHARS).collect();
                    }
                    // A cell holding U+0000 stays as it is: the row is refused for it, by column
                    // (never stripped silently).
                }
            }
            rows.push(Row {
                sheet: name.clone(),
                number,
                cells,
            });
        }
    }
    Ok(Sheet {
        headers,
        rows,
        ignored_sheets,
    })
}

/// Every worksheet as (name, grid), in workbook order.
fn read_xlsx(bytes: &[u8]) -> Result<Vec<(Option<String>, Vec<Vec<Cell>>)>, SheetError> {
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|error| SheetError::Unreadable(error.to_string()))?;
    let names = workbook.sheet_names().to_vec();
    if names.is_empty() {
        return Err(SheetError::Unreadable("the workbook has no sheet".into()));
    }
    if names.len() > MAX_SHEETS {
        return Err(SheetError::TooManySheets);
    }
    let mut sheets = Vec::with_capacity(names.len());
    for name in names {
        let range = workbook
            .worksheet_range(&name)
            .map_err(|error| SheetError::Unreadable(error.to_string()))?;
        if range.height() > MAX_ROWS + 1_000 {
            return Err(SheetError::TooManyRows);
        }
        if range.width() > MAX_COLUMNS {
            return Err(SheetError::TooManyColumns);
        }
        // Rows above the used range are blank in the spreadsheet: keep the numbering a user sees.
        let offset = range.start().map_or(0, |(row, _)| row as usize);
        let mut rows = vec![Vec::new(); offset];
        for row in range.rows() {
            rows.push(
                row.iter()
                    .map(|cell| match cell {
                        Data::Empty | Data::Error(_) => Cell::Empty,
                        Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => {
                            Cell::Text(text.clone())
                        }
                        Data::Int(number) => Cell::Number(*number as f64),
                        Data::Float(number) => Cell::Number(*number),
                        Data::Bool(value) => Cell::Bool(*value),
                        Data::DateTime(at) => at
                            .as_datetime()
                            .map(Cell::DateTime)
                            .unwrap_or_else(|| Cell::Number(at.as_f64())),
                    })
                    .collect(),
            );
        }
        sheets.push((Some(name), rows));
    }
    Ok(sheets)
}

fn read_csv(bytes: &[u8]) -> Result<Vec<Vec<Cell>>, SheetError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| SheetError::Unreadable("CSV must be UTF-8 text".into()))?;
    let first_line = text.lines().next().unwrap_or_default();
    let delimiter = if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| SheetError::Unreadable(error.to_string()))?;
        if rows.len() > MAX_ROWS + 1_000 {
            return Err(SheetError::TooManyRows);
        }
        if record.len() > MAX_COLUMNS {
            return Err(SheetError::TooManyColumns);
        }
        rows.push(
            record
                .iter()
                .map(|field| {
                    if field.trim().is_empty() {
                        Cell::Empty
                    } else {
                        Cell::Text(field.to_owned())
                    }
                })
                .collect(),
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_bom_semicolons_and_quoted_newlines() {
        let text =
            "\u{feff}Account Name;ARR;Notes\n\"Acme; Inc\";\"$1,200.50\";\"line one\nline two\"\n\n;;\nBeta;12%;x\n";
        let sheet = read("book.csv", text.as_bytes()).unwrap();
        assert_eq!(sheet.headers, ["Account Name", "ARR", "Notes"]);
        assert_eq!(sheet.rows.len(), 2);
        assert_eq!(sheet.rows[0].number, 2);
        assert_eq!(sheet.rows[0].cells[0].text(), "Acme; Inc");
        assert_eq!(sheet.rows[0].cells[1].decimal(), Some(Decimal::new(120050, 2)));
        assert_eq!(sheet.rows[0].cells[2].text(), "line one\nline two");
        // Records are rows: the quoted newline stays in its row, and CSV skips empty lines.
        assert_eq!(sheet.rows[1].number, 4);
        assert_eq!(sheet.rows[1].cells[1].percent(), Some(12.0));
    }

    #[test]
    fn amounts_dates_and_flags_read_as_people_write_them() {
        let text = |value: &str| Cell::Text(value.into());
        assert_eq!(text("1.200,50 €").decimal(), Some(Decimal::new(120050, 2)));
        assert_eq!(text("(300)").decimal(), Some(Decimal::from(-300)));
        assert_eq!(text("twelve").decimal(), None);
        assert_eq!(text("03/15/2026").date(), NaiveDate::from_ymd_opt(2026, 3, 15));
        assert_eq!(text("15.03.2026").date(), NaiveDate::from_ymd_opt(2026, 3, 15));
        assert_eq!(text("Yes").bool(), Some(true));
        assert_eq!(Cell::Number(0.25).percent(), Some(25.0));
    }
}
