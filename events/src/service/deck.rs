//! PowerPoint decks written as OOXML parts into a template (docs/EXPORTS.md, "Decks"): the
//! template's theme, master and layouts are kept, its slides are dropped, and each slide of
//! the deck is added on the template's "Title Only" layout (else its first layout) with a
//! title, text, tables and native charts. A chart is a `c:chartSpace` part with its data cached
//! and embedded as a workbook, so PowerPoint and LibreOffice both draw it and can edit its data.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use rust_xlsxwriter::Workbook;

#[derive(Debug, Clone, PartialEq)]
pub enum ChartKind {
    Bar,
    Line,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub kind: ChartKind,
    pub title: String,
    pub categories: Vec<String>,
    /// (series name, one value per category).
    pub series: Vec<(String, Vec<f64>)>,
    /// The value axis's number format as Excel writes it (`$#,##0`); `General` when none.
    pub number_format: Option<String>,
    /// One colour (`RRGGBB`) per series; the template's accents when empty.
    pub series_colours: Vec<String>,
    /// One colour per category, for a single series whose bars stand for different things
    /// (health colours).
    pub point_colours: Vec<String>,
}

impl Chart {
    pub fn new(
        kind: ChartKind,
        title: impl Into<String>,
        categories: Vec<String>,
        series: Vec<(String, Vec<f64>)>,
    ) -> Self {
        Chart {
            kind,
            title: title.into(),
            categories,
            series,
            number_format: None,
            series_colours: Vec::new(),
            point_colours: Vec::new(),
        }
    }

    /// Amounts of money on the value axis: `$1,250,000`.
    pub fn money(mut self) -> Self {
        self.number_format = Some("$#,##0".into());
        self
    }

    /// Whole counts on the value axis: `1,250`.
    pub fn counts(mut self) -> Self {
        self.number_format = Some("#,##0".into());
        self
    }

    pub fn series_colours(mut self, colours: &[&str]) -> Self {
        self.series_colours = colours.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    pub fn point_colours(mut self, colours: Vec<String>) -> Self {
        self.point_colours = colours;
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Lines of text, one paragraph each.
    Text(Vec<String>),
    /// A header row and rows.
    Table(Vec<String>, Vec<Vec<String>>),
    Chart(Chart),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slide {
    pub title: String,
    /// Laid out side by side under the title.
    pub blocks: Vec<Block>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeckError {
    #[error("the template is not a .pptx or .potx package: {0}")]
    NotAPackage(String),
    #[error("the template lacks {0}")]
    Missing(&'static str),
    #[error("writing the deck failed: {0}")]
    Write(String),
}

const PRESENTATION_MAIN: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml";
const TEMPLATE_MAIN: &str = "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml";
const SLIDE_TYPE: &str = "application/vnd.openxmlformats-officedocument.presentationml.slide+xml";
const CHART_TYPE: &str = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml";
const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const NAMESPACES: &str = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main""#;

/// Text as XML character data.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The value of `name="..."` in the first tag of `xml` that starts with `tag`.
fn attribute<'a>(xml: &'a str, tag: &str, name: &str) -> Option<&'a str> {
    let start = xml.find(tag)?;
    let end = start + xml[start..].find('>')?;
    let element = &xml[start..end];
    let key = format!(" {name}=\"");
    let at = element.find(&key)? + key.len();
    let len = element[at..].find('"')?;
    Some(&element[at..at + len])
}

/// A template read into its parts.
struct Package {
    parts: BTreeMap<String, Vec<u8>>,
}

impl Package {
    fn read(bytes: &[u8]) -> Result<Package, DeckError> {
        let mut archive =
            zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| DeckError::NotAPackage(error.to_string()))?;
        let mut parts = BTreeMap::new();
        for index in 0..archive.len() {
            let mut file = archive
                .by_index(index)
                .map_err(|error| DeckError::NotAPackage(error.to_string()))?;
            if file.is_dir() {
                continue;
            }
            // Templates are small; a part this large is not one.
            if file.size() > 50 * 1024 * 1024 {
                return Err(DeckError::NotAPackage("a part is over 50 MB".into()));
            }
            let mut data = Vec::with_capacity(file.size() as usize);
            file.read_to_end(&mut data)
                .map_err(|error| DeckError::NotAPackage(error.to_string()))?;
            let name = file
                .name()
                .map_err(|error| DeckError::NotAPackage(error.to_string()))?
                .into_owned();
            parts.insert(name, data);
        }
        Ok(Package { parts })
    }

    fn text(&self, name: &str, what: &'static str) -> Result<String, DeckError> {
        let bytes = self.parts.get(name).ok_or(DeckError::Missing(what))?;
        String::from_utf8(bytes.clone()).map_err(|_| DeckError::NotAPackage(format!("{name} is not UTF-8")))
    }
}

/// The layout new slides use: "Title Only", else "Title, Content", else the first.
fn choose_layout(package: &Package) -> Result<String, DeckError> {
    let layouts: Vec<(&String, String)> = package
        .parts
        .iter()
        .filter(|(name, _)| name.starts_with("ppt/slideLayouts/slideLayout") && name.ends_with(".xml"))
        .map(|(name, bytes)| (name, String::from_utf8_lossy(bytes).into_owned()))
        .collect();
    let by_type = |wanted: &str| {
        layouts
            .iter()
            .find(|(_, xml)| attribute(xml, "<p:sldLayout", "type") == Some(wanted))
            .map(|(name, _)| (*name).clone())
    };
    by_type("titleOnly")
        .or_else(|| by_type("obj"))
        .or_else(|| layouts.first().map(|(name, _)| (*name).clone()))
        .ok_or(DeckError::Missing("a slide layout"))
}

/// Checks that `bytes` can serve as a template.
pub fn check_template(bytes: &[u8]) -> Result<(), DeckError> {
    let package = Package::read(bytes)?;
    package.text("ppt/presentation.xml", "ppt/presentation.xml")?;
    package.text("ppt/_rels/presentation.xml.rels", "ppt/_rels/presentation.xml.rels")?;
    package.text("[Content_Types].xml", "[Content_Types].xml")?;
    choose_layout(&package).map(|_| ())
}

/// EMU geometry of a rectangle.
#[derive(Clone, Copy)]
struct Frame {
    x: i64,
    y: i64,
    cx: i64,
    cy: i64,
}

fn xfrm(frame: Frame) -> String {
    format!(
        r#"<a:xfrm><a:off x="{}" y="{}"/><a:ext cx="{}" cy="{}"/></a:xfrm>"#,
        frame.x, frame.y, frame.cx, frame.cy
    )
}

fn paragraph(text: &str, size: u32, bold: bool) -> String {
    format!(
        r#"<a:p><a:r><a:rPr lang="en-US" sz="{size}" b="{}" dirty="0"/><a:t>{}</a:t></a:r></a:p>"#,
        u8::from(bold),
        escape(text)
    )
}

fn text_box(id: u32, frame: Frame, lines: &[String], size: u32) -> String {
    let paragraphs: String = lines.iter().map(|line| paragraph(line, size, false)).collect();
    format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="{id}" name="Text {id}"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr><p:spPr>{}<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr><p:txBody><a:bodyPr wrap="square"><a:normAutofit/></a:bodyPr><a:lstStyle/>{paragraphs}</p:txBody></p:sp>"#,
        xfrm(frame)
    )
}

/// Rows of a table one slide shows: the table alone, and beside another block.
pub const ROWS_ALONE: usize = 12;
pub const ROWS_BESIDE: usize = 10;
/// The height of a table row (10-point text on one line, with its margins).
const ROW_HEIGHT: i64 = 340_000;
/// About the width of one character of 10-point text, digits and bold included.
const CHAR_WIDTH: i64 = 72_000;

/// `text` cut to `max` characters, ending in "…" when cut: a cell stays on one line.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn table(id: u32, frame: Frame, header: &[String], rows: &[Vec<String>]) -> String {
    let columns = header.len().max(1) as i64;
    let width = frame.cx / columns;
    let height = ROW_HEIGHT;
    let chars = (width / CHAR_WIDTH).max(4) as usize;
    let frame = Frame {
        cy: height * (rows.len() as i64 + 1),
        ..frame
    };
    let grid: String = (0..columns).map(|_| format!(r#"<a:gridCol w="{width}"/>"#)).collect();
    let row = |cells: &[String], bold: bool| {
        let cells: String = cells
            .iter()
            .map(|cell| {
                format!(
                    r#"<a:tc><a:txBody><a:bodyPr/><a:lstStyle/>{}</a:txBody><a:tcPr marT="45720" marB="45720"/></a:tc>"#,
                    paragraph(&fit(cell, chars), 1000, bold)
                )
            })
            .collect();
        format!(r#"<a:tr h="{height}">{cells}</a:tr>"#)
    };
    let body: String = std::iter::once(row(header, true))
        .chain(rows.iter().map(|cells| {
            let mut cells = cells.clone();
            cells.resize(header.len(), String::new());
            row(&cells, false)
        }))
        .collect();
    format!(
        r#"<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="{id}" name="Table {id}"/><p:cNvGraphicFramePr><a:graphicFrameLocks noGrp="1"/></p:cNvGraphicFramePr><p:nvPr/></p:nvGraphicFramePr><p:xfrm><a:off x="{}" y="{}"/><a:ext cx="{}" cy="{}"/></p:xfrm><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/table"><a:tbl><a:tblPr firstRow="1" bandRow="1"/><a:tblGrid>{grid}</a:tblGrid>{body}</a:tbl></a:graphicData></a:graphic></p:graphicFrame>"#,
        frame.x, frame.y, frame.cx, frame.cy
    )
}

fn chart_frame(id: u32, frame: Frame, relationship: &str) -> String {
    format!(
        r#"<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="{id}" name="Chart {id}"/><p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr><p:xfrm><a:off x="{}" y="{}"/><a:ext cx="{}" cy="{}"/></p:xfrm><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:chart xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" r:id="{relationship}"/></a:graphicData></a:graphic></p:graphicFrame>"#,
        frame.x, frame.y, frame.cx, frame.cy
    )
}

/// Excel's name of column `index` (0: A).
fn column_name(index: usize) -> String {
    let mut name = String::new();
    let mut n = index + 1;
    while n > 0 {
        name.insert(0, (b'A' + ((n - 1) % 26) as u8) as char);
        n = (n - 1) / 26;
    }
    name
}

fn fill(colour: &str, line: bool) -> String {
    if line {
        format!(
            r#"<c:spPr><a:ln w="28575"><a:solidFill><a:srgbClr val="{}"/></a:solidFill></a:ln></c:spPr>"#,
            escape(colour)
        )
    } else {
        format!(
            r#"<c:spPr><a:solidFill><a:srgbClr val="{}"/></a:solidFill></c:spPr>"#,
            escape(colour)
        )
    }
}

/// The chart part and its embedded workbook (categories in column A, one series per column).
fn chart_part(chart: &Chart) -> Result<(String, Vec<u8>), DeckError> {
    let count = chart.categories.len();
    let last = count + 1;
    let categories: String = chart
        .categories
        .iter()
        .enumerate()
        .map(|(index, category)| format!(r#"<c:pt idx="{index}"><c:v>{}</c:v></c:pt>"#, escape(category)))
        .collect();
    let mut series = String::new();
    for (index, (name, values)) in chart.series.iter().enumerate() {
        let column = column_name(index + 1);
        let points: String = values
            .iter()
            .enumerate()
            .filter(|(_, value)| value.is_finite())
            .map(|(at, value)| format!(r#"<c:pt idx="{at}"><c:v>{value}</c:v></c:pt>"#))
            .collect();
        let line = chart.kind == ChartKind::Line;
        let colour = chart
            .series_colours
            .get(index)
            .map(|c| fill(c, line))
            .unwrap_or_default();
        let mut marker = if line {
            r#"<c:marker><c:symbol val="circle"/><c:size val="5"/></c:marker>"#.to_owned()
        } else {
            r#"<c:invertIfNegative val="0"/>"#.to_owned()
        };
        if !line && chart.series.len() == 1 {
            for (at, colour) in chart.point_colours.iter().enumerate() {
                marker.push_str(&format!(
                    r#"<c:dPt><c:idx val="{at}"/><c:invertIfNegative val="0"/><c:bubble3D val="0"/>{}</c:dPt>"#,
                    fill(colour, false)
                ));
            }
        }
        series.push_str(&format!(
            r#"<c:ser><c:idx val="{index}"/><c:order val="{index}"/><c:tx><c:strRef><c:f>Sheet1!${column}$1</c:f><c:strCache><c:ptCount val="1"/><c:pt idx="0"><c:v>{}</c:v></c:pt></c:strCache></c:strRef></c:tx>{colour}{marker}<c:cat><c:strRef><c:f>Sheet1!$A$2:$A${last}</c:f><c:strCache><c:ptCount val="{count}"/>{categories}</c:strCache></c:strRef></c:cat><c:val><c:numRef><c:f>Sheet1!${column}$2:${column}${last}</c:f><c:numCache><c:formatCode>General</c:formatCode><c:ptCount val="{count}"/>{points}</c:numCache></c:numRef></c:val>{}</c:ser>"#,
            escape(name),
            if chart.kind == ChartKind::Line { r#"<c:smooth val="0"/>"# } else { "" }
        ));
    }
    let plot = match chart.kind {
        ChartKind::Bar => format!(
            r#"<c:barChart><c:barDir val="col"/><c:grouping val="clustered"/><c:varyColors val="0"/>{series}<c:gapWidth val="80"/><c:axId val="100"/><c:axId val="200"/></c:barChart>"#
        ),
        ChartKind::Line => format!(
            r#"<c:lineChart><c:grouping val="standard"/><c:varyColors val="0"/>{series}<c:marker val="1"/><c:axId val="100"/><c:axId val="200"/></c:lineChart>"#
        ),
    };
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="{REL}"><c:roundedCorners val="0"/><c:chart><c:title><c:tx><c:rich><a:bodyPr/><a:lstStyle/><a:p><a:r><a:rPr lang="en-US" sz="1400" b="1"/><a:t>{}</a:t></a:r></a:p></c:rich></c:tx><c:overlay val="0"/></c:title><c:autoTitleDeleted val="0"/><c:plotArea><c:layout/>{plot}<c:catAx><c:axId val="100"/><c:scaling><c:orientation val="minMax"/></c:scaling><c:delete val="0"/><c:axPos val="b"/><c:numFmt formatCode="General" sourceLinked="0"/><c:tickLblPos val="nextTo"/><c:crossAx val="200"/><c:crosses val="autoZero"/><c:auto val="1"/><c:lblAlgn val="ctr"/><c:lblOffset val="100"/></c:catAx><c:valAx><c:axId val="200"/><c:scaling><c:orientation val="minMax"/></c:scaling><c:delete val="0"/><c:axPos val="l"/><c:majorGridlines/><c:numFmt formatCode="{}" sourceLinked="0"/><c:tickLblPos val="nextTo"/><c:crossAx val="100"/><c:crosses val="autoZero"/><c:crossBetween val="between"/></c:valAx></c:plotArea>{}<c:plotVisOnly val="1"/><c:dispBlanksAs val="gap"/></c:chart><c:externalData r:id="rId1"><c:autoUpdate val="0"/></c:externalData></c:chartSpace>"#,
        escape(&chart.title),
        escape(chart.number_format.as_deref().unwrap_or("General")),
        // A single series needs no legend: the title says what it is.
        if chart.series.len() > 1 {
            r#"<c:legend><c:legendPos val="b"/><c:overlay val="0"/></c:legend>"#
        } else {
            ""
        }
    );
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let write = |error: rust_xlsxwriter::XlsxError| DeckError::Write(error.to_string());
    sheet.set_name("Sheet1").map_err(write)?;
    for (row, category) in chart.categories.iter().enumerate() {
        sheet.write_string(row as u32 + 1, 0, category).map_err(write)?;
    }
    for (index, (name, values)) in chart.series.iter().enumerate() {
        let column = index as u16 + 1;
        sheet.write_string(0, column, name).map_err(write)?;
        for (row, value) in values.iter().enumerate().filter(|(_, value)| value.is_finite()) {
            sheet.write_number(row as u32 + 1, column, *value).map_err(write)?;
        }
    }
    let embedded = workbook.save_to_buffer().map_err(write)?;
    Ok((xml, embedded))
}

/// The slides as they fit: a table of four or more columns takes a slide's whole width (what
/// stood beside it follows on its own slide, under the same title), and a table longer than a
/// slide holds continues on the next ones ("Renewals (2 of 3)").
pub fn paginate(slides: &[Slide]) -> Vec<Slide> {
    let mut out = Vec::new();
    for slide in slides {
        let wide = slide
            .blocks
            .iter()
            .any(|block| matches!(block, Block::Table(header, _) if header.len() >= 4));
        let groups: Vec<Vec<Block>> = if wide && slide.blocks.len() > 1 {
            slide.blocks.iter().map(|block| vec![block.clone()]).collect()
        } else {
            vec![slide.blocks.clone()]
        };
        for blocks in groups {
            let capacity = if blocks.len() > 1 { ROWS_BESIDE } else { ROWS_ALONE };
            let longest = blocks
                .iter()
                .map(|block| match block {
                    Block::Table(_, rows) => rows.len(),
                    _ => 0,
                })
                .max()
                .unwrap_or(0);
            let pages = longest.div_ceil(capacity).max(1);
            for page in 0..pages {
                let title = if pages > 1 {
                    format!("{} ({} of {pages})", slide.title, page + 1)
                } else {
                    slide.title.clone()
                };
                let blocks = blocks
                    .iter()
                    .filter_map(|block| match block {
                        Block::Table(header, rows) => Some(Block::Table(
                            header.clone(),
                            rows.iter().skip(page * capacity).take(capacity).cloned().collect(),
                        )),
                        other if page == 0 => Some(other.clone()),
                        _ => None,
                    })
                    .collect();
                out.push(Slide { title, blocks });
            }
        }
    }
    out
}

/// Writes `slides` into `template` (a .pptx or .potx), paginated to fit ([`paginate`]).
pub fn build(template: &[u8], slides: &[Slide]) -> Result<Vec<u8>, DeckError> {
    let slides = &paginate(slides)[..];
    let mut package = Package::read(template)?;
    let layout = choose_layout(&package)?;
    let presentation = package.text("ppt/presentation.xml", "ppt/presentation.xml")?;
    let relationships = package.text("ppt/_rels/presentation.xml.rels", "ppt/_rels/presentation.xml.rels")?;
    let mut content_types = package.text("[Content_Types].xml", "[Content_Types].xml")?;
    let width: i64 = attribute(&presentation, "<p:sldSz", "cx")
        .and_then(|value| value.parse().ok())
        .unwrap_or(12_192_000);
    let height: i64 = attribute(&presentation, "<p:sldSz", "cy")
        .and_then(|value| value.parse().ok())
        .unwrap_or(6_858_000);

    // Drop the template's own slides (and their notes) with every reference to them.
    package
        .parts
        .retain(|name, _| !(name.starts_with("ppt/slides/") || name.starts_with("ppt/notesSlides/")));
    let mut kept_relationships = String::new();
    let mut rest = relationships.as_str();
    let mut head = String::new();
    if let Some(start) = rest.find("<Relationship ") {
        head.push_str(&rest[..start]);
        rest = &rest[start..];
    }
    while let Some(start) = rest.find("<Relationship ") {
        let end = start + rest[start..].find("/>").map_or(rest.len() - start, |end| end + 2);
        let element = &rest[start..end];
        if !element.contains("relationships/slide\"") {
            kept_relationships.push_str(element);
        }
        rest = &rest[end..];
    }
    let tail = rest.trim_start().to_owned();
    let mut overrides = String::new();
    let mut remaining = content_types.as_str();
    let types_head_end = remaining
        .find("<Default")
        .or_else(|| remaining.find("<Override"))
        .unwrap_or(0);
    let types_head = remaining[..types_head_end].to_owned();
    remaining = &remaining[types_head_end..];
    while let Some(start) = remaining.find('<') {
        let Some(end) = remaining[start..].find('>').map(|end| start + end + 1) else {
            break;
        };
        let element = &remaining[start..end];
        if element.starts_with("</Types") {
            break;
        }
        let part = attribute(element, "<Override", "PartName").unwrap_or_default();
        if !(part.starts_with("/ppt/slides/") || part.starts_with("/ppt/notesSlides/")) {
            overrides.push_str(element);
        }
        remaining = &remaining[end..];
    }
    content_types = format!("{types_head}{overrides}").replace(TEMPLATE_MAIN, PRESENTATION_MAIN);
    if !content_types.contains("Extension=\"xlsx\"") {
        content_types.push_str(&format!(r#"<Default Extension="xlsx" ContentType="{XLSX_TYPE}"/>"#));
    }

    let layout_target = format!("../slideLayouts/{}", layout.trim_start_matches("ppt/slideLayouts/"));
    let margin = width / 20;
    let top = height * 18 / 100;
    let content_height = height * 76 / 100;
    let mut slide_list = String::new();
    let mut chart_count = 0;
    for (index, slide) in slides.iter().enumerate() {
        let number = index + 1;
        let mut shapes = format!(
            r#"<p:sp><p:nvSpPr><p:cNvPr id="2" name="Title 1"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:spPr>{}</p:spPr><p:txBody><a:bodyPr><a:normAutofit/></a:bodyPr><a:lstStyle/>{}</p:txBody></p:sp>"#,
            xfrm(Frame {
                x: margin,
                y: height * 4 / 100,
                cx: width - 2 * margin,
                cy: height * 12 / 100,
            }),
            paragraph(&slide.title, 3200, true)
        );
        let mut slide_relationships =
            format!(r#"<Relationship Id="rId1" Type="{REL}/slideLayout" Target="{layout_target}"/>"#);
        let blocks = slide.blocks.len().max(1) as i64;
        let gap = width / 40;
        let block_width = (width - 2 * margin - gap * (blocks - 1)) / blocks;
        for (at, block) in slide.blocks.iter().enumerate() {
            let frame = Frame {
                x: margin + at as i64 * (block_width + gap),
                y: top,
                cx: block_width,
                cy: content_height,
            };
            let id = at as u32 + 3;
            match block {
                Block::Text(lines) => shapes.push_str(&text_box(id, frame, lines, 1600)),
                Block::Table(header, rows) => shapes.push_str(&table(id, frame, header, rows)),
                Block::Chart(chart) => {
                    chart_count += 1;
                    let (xml, embedded) = chart_part(chart)?;
                    let relationship = format!("rId{}", at + 2);
                    package
                        .parts
                        .insert(format!("ppt/charts/chart{chart_count}.xml"), xml.into_bytes());
                    package.parts.insert(
                        format!("ppt/charts/_rels/chart{chart_count}.xml.rels"),
                        format!(
                            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}/package" Target="../embeddings/chart-data{chart_count}.xlsx"/></Relationships>"#
                        )
                        .into_bytes(),
                    );
                    package
                        .parts
                        .insert(format!("ppt/embeddings/chart-data{chart_count}.xlsx"), embedded);
                    content_types.push_str(&format!(
                        r#"<Override PartName="/ppt/charts/chart{chart_count}.xml" ContentType="{CHART_TYPE}"/>"#
                    ));
                    slide_relationships.push_str(&format!(
                        r#"<Relationship Id="{relationship}" Type="{REL}/chart" Target="../charts/chart{chart_count}.xml"/>"#
                    ));
                    shapes.push_str(&chart_frame(id, frame, &relationship));
                }
            }
        }
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<p:sld {NAMESPACES}><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/><a:chOff x="0" y="0"/><a:chExt cx="0" cy="0"/></a:xfrm></p:grpSpPr>{shapes}</p:spTree></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sld>"#
        );
        package
            .parts
            .insert(format!("ppt/slides/slide{number}.xml"), xml.into_bytes());
        package.parts.insert(
            format!("ppt/slides/_rels/slide{number}.xml.rels"),
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{slide_relationships}</Relationships>"#
            )
            .into_bytes(),
        );
        content_types.push_str(&format!(
            r#"<Override PartName="/ppt/slides/slide{number}.xml" ContentType="{SLIDE_TYPE}"/>"#
        ));
        kept_relationships.push_str(&format!(
            r#"<Relationship Id="rIdCsSlide{number}" Type="{REL}/slide" Target="slides/slide{number}.xml"/>"#
        ));
        slide_list.push_str(&format!(
            r#"<p:sldId id="{}" r:id="rIdCsSlide{number}"/>"#,
            255 + number
        ));
    }
    content_types.push_str("</Types>");
    let relationships = format!("{head}{kept_relationships}{tail}");
    let list = format!("<p:sldIdLst>{slide_list}</p:sldIdLst>");
    let presentation =
        if let (Some(start), Some(end)) = (presentation.find("<p:sldIdLst"), presentation.find("</p:sldIdLst>")) {
            format!(
                "{}{list}{}",
                &presentation[..start],
                &presentation[end + "</p:sldIdLst>".len()..]
            )
        } else if let Some(start) = presentation.find("<p:sldIdLst/>") {
            format!(
                "{}{list}{}",
                &presentation[..start],
                &presentation[start + "<p:sldIdLst/>".len()..]
            )
        } else {
            let at = presentation
                .find("<p:sldSz")
                .ok_or(DeckError::Missing("p:sldSz in ppt/presentation.xml"))?;
            format!("{}{list}{}", &presentation[..at], &presentation[at..])
        };
    package
        .parts
        .insert("ppt/presentation.xml".into(), presentation.into_bytes());
    package
        .parts
        .insert("ppt/_rels/presentation.xml.rels".into(), relationships.into_bytes());
    package
        .parts
        .insert("[Content_Types].xml".into(), content_types.into_bytes());

    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    // [Content_Types].xml first, as Office writes it.
    let order = std::iter::once("[Content_Types].xml".to_owned())
        .chain(
            package
                .parts
                .keys()
                .filter(|name| *name != "[Content_Types].xml")
                .cloned(),
        )
        .collect::<Vec<_>>();
    for name in order {
        let data = &package.parts[&name];
        out.start_file(name, options)
            .map_err(|error| DeckError::Write(error.to_string()))?;
        out.write_all(data)
            .map_err(|error| DeckError::Write(error.to_string()))?;
    }
    Ok(out
        .finish()
        .map_err(|error| DeckError::Write(error.to_string()))?
        .into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Vec<String>> {
        (0..n).map(|i| vec![format!("row {i}")]).collect()
    }

    #[test]
    fn long_tables_continue_and_wide_ones_take_the_width() {
        let chart = Block::Chart(Chart::new(ChartKind::Bar, "c", vec![], vec![]));
        let wide = vec!["a".into(), "b".into(), "c".into(), "d".into()];
        let slides = paginate(&[
            Slide {
                title: "Renewals".into(),
                blocks: vec![Block::Table(wide.clone(), rows(25)), chart.clone()],
            },
            Slide {
                title: "Narrow".into(),
                blocks: vec![Block::Table(vec!["a".into()], rows(15)), chart.clone()],
            },
        ]);
        let shape: Vec<(String, Vec<usize>)> = slides
            .iter()
            .map(|slide| {
                let sizes = slide
                    .blocks
                    .iter()
                    .map(|block| match block {
                        Block::Table(_, rows) => rows.len(),
                        _ => 0,
                    })
                    .collect();
                (slide.title.clone(), sizes)
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("Renewals (1 of 3)".to_owned(), vec![12]),
                ("Renewals (2 of 3)".to_owned(), vec![12]),
                ("Renewals (3 of 3)".to_owned(), vec![1]),
                ("Renewals".to_owned(), vec![0]),
                ("Narrow (1 of 2)".to_owned(), vec![10, 0]),
                ("Narrow (2 of 2)".to_owned(), vec![5]),
            ]
        );
    }

    #[test]
    fn cells_stay_on_one_line() {
        assert_eq!(fit("Acme", 10), "Acme");
        assert_eq!(fit("Acme Worldwide Holdings", 10), "Acme Worl…");
    }
}
