//! Tables out as .xlsx workbooks (rust_xlsxwriter) and CSV: what exports and an import's error
//! file write. A workbook opens on a sheet that says what it is, then one sheet per table, each
//! with a bold frozen header row, an autofilter, fitted widths and number formats by column
//! kind (docs/EXPORTS.md).

use chrono::NaiveDate;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};

/// How a column's cells are written and formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Number,
    /// Money with two decimals.
    Currency,
    /// Points (12.5 is 12.5 %).
    Percent,
    Date,
    Bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Date(NaiveDate),
    Bool(bool),
}

impl Cell {
    pub fn text(value: impl Into<String>) -> Cell {
        Cell::Text(value.into())
    }

    /// The cell as CSV text: numbers as written, percentages in points, dates ISO.
    fn csv(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Number(number) => number.to_string(),
            Cell::Date(day) => day.to_string(),
            Cell::Bool(value) => value.to_string(),
        }
    }

    fn width(&self) -> usize {
        match self {
            Cell::Empty => 0,
            Cell::Text(text) => text.lines().map(|line| line.chars().count()).max().unwrap_or(0),
            Cell::Number(number) => format!("{number:.2}").len() + 3,
            Cell::Date(_) => 10,
            Cell::Bool(_) => 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub title: String,
    pub kind: Kind,
}

pub fn column(title: &str, kind: Kind) -> Column {
    Column {
        title: title.to_owned(),
        kind,
    }
}

/// One sheet: a header row and rows of cells in column order.
pub struct Table {
    /// At most 31 characters, none of `[]:*?/\`.
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// Widest a fitted column grows, in characters.
const MAX_WIDTH: usize = 60;

/// A sheet name Excel accepts.
fn sheet_name(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
    if cleaned.is_empty() {
        "Sheet".into()
    } else {
        cleaned
    }
}

/// The workbook: an "About" sheet of (label, value) lines, then each table on its own sheet.
pub fn xlsx(title: &str, about: &[(String, String)], tables: &[Table]) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let heading = Format::new().set_bold().set_font_size(14);
    let wrap = Format::new().set_text_wrap();
    let formats = |kind: Kind| match kind {
        Kind::Currency => Some(Format::new().set_num_format("#,##0.00")),
        Kind::Percent => Some(Format::new().set_num_format("0.0%")),
        Kind::Date => Some(Format::new().set_num_format("yyyy-mm-dd")),
        Kind::Integer => Some(Format::new().set_num_format("0")),
        Kind::Number => Some(Format::new().set_num_format("0.00")),
        Kind::Text | Kind::Bool => None,
    };
    {
        let sheet = workbook.add_worksheet();
        sheet.set_name("About")?;
        sheet.write_string_with_format(0, 0, title, &heading)?;
        let mut widest = (10, 10);
        for (index, (label, value)) in about.iter().enumerate() {
            let row = index as u32 + 2;
            sheet.write_string_with_format(row, 0, label, &bold)?;
            sheet.write_string(row, 1, value)?;
            widest = (widest.0.max(label.chars().count()), widest.1.max(value.chars().count()));
        }
        sheet.set_column_width(0, (widest.0 + 2).min(MAX_WIDTH) as f64)?;
        sheet.set_column_width(1, (widest.1 + 2).min(MAX_WIDTH * 2) as f64)?;
    }
    for table in tables {
        let sheet = workbook.add_worksheet();
        sheet.set_name(sheet_name(&table.name))?;
        let mut widths: Vec<usize> = table
            .columns
            .iter()
            .map(|column| column.title.chars().count() + 3)
            .collect();
        for (col, column) in table.columns.iter().enumerate() {
            sheet.write_string_with_format(0, col as u16, &column.title, &bold)?;
        }
        let formats: Vec<Option<Format>> = table.columns.iter().map(|column| formats(column.kind)).collect();
        for (index, cells) in table.rows.iter().enumerate() {
            let row = index as u32 + 1;
            for (col, cell) in cells.iter().enumerate().take(table.columns.len()) {
                let column = col as u16;
                widths[col] = widths[col].max(cell.width());
                let kind = table.columns[col].kind;
                match (cell, &formats[col]) {
                    (Cell::Empty, _) => {}
                    (Cell::Number(number), Some(format)) if kind == Kind::Percent => {
                        sheet.write_number_with_format(row, column, number / 100.0, format)?;
                    }
                    (Cell::Number(number), Some(format)) => {
                        sheet.write_number_with_format(row, column, *number, format)?;
                    }
                    (Cell::Number(number), None) => {
                        sheet.write_number(row, column, *number)?;
                    }
                    (Cell::Date(day), format) => {
                        use chrono::Datelike;
                        let date = ExcelDateTime::from_ymd(day.year() as u16, day.month() as u8, day.day() as u8)?;
                        let format = format
                            .clone()
                            .unwrap_or_else(|| Format::new().set_num_format("yyyy-mm-dd"));
                        sheet.write_datetime_with_format(row, column, &date, &format)?;
                    }
                    (Cell::Bool(value), _) => {
                        sheet.write_boolean(row, column, *value)?;
                    }
                    (Cell::Text(text), _) if text.contains('\n') => {
                        sheet.write_string_with_format(row, column, text, &wrap)?;
                    }
                    (Cell::Text(text), _) => {
                        sheet.write_string(row, column, text)?;
                    }
                }
            }
        }
        for (col, width) in widths.iter().enumerate() {
            sheet.set_column_width(col as u16, (*width).min(MAX_WIDTH) as f64)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        if !table.columns.is_empty() {
            sheet.autofilter(0, 0, table.rows.len() as u32, table.columns.len() as u16 - 1)?;
        }
    }
    workbook.save_to_buffer()
}

/// One table as CSV (RFC 4180, with a UTF-8 byte-order mark so spreadsheet programs read
/// accents right).
pub fn csv(table: &Table) -> Vec<u8> {
    let mut out = csv_header(&table.columns);
    for cells in &table.rows {
        csv_row(cells, &mut out);
    }
    out
}

/// The start of a CSV file: the byte-order mark and the header row.
pub fn csv_header(columns: &[Column]) -> Vec<u8> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    for (index, column) in columns.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        csv_field(&column.title, &mut out);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// One CSV row appended to `out`.
pub fn csv_row(cells: &[Cell], out: &mut Vec<u8>) {
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        csv_field(&cell.csv(), out);
    }
    out.extend_from_slice(b"\r\n");
}

fn csv_field(text: &str, out: &mut Vec<u8>) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}
