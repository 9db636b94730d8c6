//! `/render?format=svg`: a line chart of series as an SVG document, drawn
//! by the server so that a page needs no charting library. It follows
//! graphite-web's default look (`render/glyph.py`): white background, black
//! text, its twelve line colours in order, grey grid, the time axis labelled
//! in UTC with graphite's choice of label step for the time per pixel, and a
//! legend of the series' names below the plot. "No Data" when there is
//! nothing to draw.

use super::series::Series;
use super::time::format_time;

/// graphite-web's `linecolors` (blue, green, red, purple, brown, yellow,
/// aqua, grey, magenta, pink, gold, rose) as its `colorAliases` define them.
pub const LINE_COLORS: [&str; 12] = [
    "#6464ff", "#00c800", "#c80032", "#c864ff", "#966432", "#ffff00", "#009696", "#afafaf", "#ff00ff", "#ff6464",
    "#c8c800", "#c896c8",
];

/// The most legend rows drawn; the rest are counted in one more row. A
/// legend is for telling lines apart, which twelve colours cannot do for
/// more series anyway.
pub const MAX_LEGEND_ROWS: usize = 12;

/// Pixel sizes of the layout, for graphite's default font size of 10.
const LINE_HEIGHT: f64 = 14.0;
const CHAR_WIDTH: f64 = 6.0;
const MARGIN: f64 = 10.0;
const Y_LABEL_WIDTH: f64 = 48.0;
const X_LABEL_HEIGHT: f64 = 16.0;
/// Time labels are at least this far apart: the widest, "%m/%d %H:%M" (11
/// characters), is 66 pixels wide at 6 a character and may overlap its
/// neighbours' margins a little; graphite's configurations space labels
/// wider than that for the ranges they cover.
const MIN_LABEL_SPACING: f64 = 60.0;

/// The chart's size and title.
#[derive(Debug, Clone, PartialEq)]
pub struct SvgOptions {
    pub width: u32,
    pub height: u32,
    pub title: Option<String>,
}

impl Default for SvgOptions {
    /// graphite-web's default `/render` size, 330 × 250.
    fn default() -> Self {
        SvgOptions {
            width: 330,
            height: 250,
            title: None,
        }
    }
}

/// The chart of `series` as an SVG document.
pub fn render_svg(series: &[Series], options: &SvgOptions) -> String {
    let (width, height) = (f64::from(options.width.max(1)), f64::from(options.height.max(1)));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n",
        w = options.width.max(1),
        h = options.height.max(1)
    );
    let mut top = MARGIN;
    if let Some(title) = &options.title {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
            num(width / 2.0),
            num(top + 10.0),
            escape(title)
        ));
        top += LINE_HEIGHT + 4.0;
    }
    let values = || {
        series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .filter(|v| v.is_finite())
    };
    let (Some(low), Some(high)) = (values().reduce(f64::min), values().reduce(f64::max)) else {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\">No Data</text>\n</svg>\n",
            num(width / 2.0),
            num(height / 2.0)
        ));
        return svg;
    };
    let legend_rows = series.len().min(MAX_LEGEND_ROWS) + usize::from(series.len() > MAX_LEGEND_ROWS);
    let plot = Plot {
        left: MARGIN + Y_LABEL_WIDTH,
        right: (width - MARGIN).max(MARGIN + Y_LABEL_WIDTH + 1.0),
        top,
        bottom: (height - MARGIN - X_LABEL_HEIGHT - legend_rows as f64 * LINE_HEIGHT).max(top + 1.0),
        start: series.iter().map(|s| s.start).min().unwrap_or(0),
        end: series.iter().map(|s| s.end).max().unwrap_or(1),
        y: y_axis(low, high),
    };
    plot.draw_axes(&mut svg);
    for (i, s) in series.iter().enumerate() {
        plot.draw_series(&mut svg, s, LINE_COLORS[i % LINE_COLORS.len()]);
    }
    draw_legend(&mut svg, series, plot.bottom + X_LABEL_HEIGHT + 4.0, width);
    svg.push_str("</svg>\n");
    svg
}

/// A coordinate, to a tenth of a pixel.
fn num(x: f64) -> String {
    let text = format!("{x:.1}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_string)
}

/// Text for an SVG text node or attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            // XML 1.0 forbids most control characters even escaped.
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The value axis: its bottom, top and the step between labels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct YAxis {
    bottom: f64,
    top: f64,
    step: f64,
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about five labels,
/// and the range rounded out to steps. A flat line gets a unit of room.
fn y_axis(low: f64, high: f64) -> YAxis {
    // A quarter of the largest f64 each way keeps every difference finite.
    let limit = f64::MAX / 4.0;
    let (low, high) = (low.clamp(-limit, limit), high.clamp(-limit, limit));
    // Flat within 12 digits (or below 1e-300, where steps would underflow).
    let flat = high - low <= high.abs().max(low.abs()).max(1e-300) * 1e-12;
    // A flat line gets room around it: a unit, or a tenth of its value
    // where a unit would vanish in rounding.
    let room = high.abs().max(low.abs()) / 10.0;
    let (low, high) = if flat {
        (low - room.max(1.0), high + room.max(1.0))
    } else {
        (low, high)
    };
    let rough = (high - low) / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    YAxis {
        bottom: (low / step).floor() * step,
        top: (high / step).ceil() * step,
        step,
    }
}

/// A value label with graphite's SI suffixes (K, M, G, T, P).
fn value_label(value: f64, step: f64) -> String {
    let magnitude = value.abs().max(step.abs());
    let (scale, suffix) = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")]
        .into_iter()
        .find(|(scale, _)| magnitude >= *scale)
        .unwrap_or((1.0, ""));
    let decimals = (-(step / scale).log10().floor()).clamp(0.0, 6.0) as usize;
    let text = format!("{:.*}", decimals, value / scale);
    // "-0" is 0.
    let text = if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        text.trim_start_matches('-').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

/// graphite-web's `xAxisConfigs`, reduced to the labels: (seconds per
/// pixel from which it applies, seconds between labels, label format, the
/// longest time range it is used for).
const X_AXIS: [(f64, i64, &str, i64); 22] = [
    (0.0, 5, "%H:%M:%S", 600),
    (0.07, 10, "%H:%M:%S", 1200),
    (0.14, 15, "%H:%M:%S", 1800),
    (0.27, 60, "%H:%M", 7200),
    (0.5, 60, "%H:%M", 7200),
    (1.2, 120, "%H:%M", 3 * 3600),
    (2.0, 300, "%H:%M", 6 * 3600),
    (5.0, 600, "%H:%M", 12 * 3600),
    (10.0, 1200, "%H:%M", 86400),
    (30.0, 3600, "%H:%M", 2 * 86400),
    (60.0, 7200, "%H:%M", 2 * 86400),
    (100.0, 4 * 3600, "%a %H:%M", 6 * 86400),
    (255.0, 12 * 3600, "%m/%d %H:%M", 10 * 86400),
    (600.0, 86400, "%m/%d", 14 * 86400),
    (1000.0, 86400, "%m/%d", 365 * 86400),
    (2000.0, 2 * 86400, "%m/%d", 365 * 86400),
    (4000.0, 4 * 86400, "%m/%d", 365 * 86400),
    (8000.0, 7 * 86400, "%m/%d", 365 * 86400),
    (16000.0, 14 * 86400, "%m/%d", 365 * 86400),
    (32000.0, 30 * 86400, "%m/%d", 365 * 86400),
    (64000.0, 60 * 86400, "%m/%d %Y", i64::MAX),
    (100000.0, 120 * 86400, "%m/%d %Y", i64::MAX),
];

/// graphite-web's choice: the last configuration whose seconds per pixel
/// is reached and whose longest range covers this one. Where graphite would
/// fall back to its first configuration (a range longer than any narrow
/// enough one covers), the next configurations are tried until labels are
/// at least [`MIN_LABEL_SPACING`] pixels apart, and beyond the last, its
/// format with a step that spaces them so.
fn x_axis(range: i64, pixels: f64) -> (i64, &'static str) {
    let per_pixel = range as f64 / pixels.max(1.0);
    let mut chosen = 0;
    for (i, (seconds, _, _, longest)) in X_AXIS.iter().enumerate() {
        if *seconds <= per_pixel && *longest >= range {
            chosen = i;
        }
    }
    let max_labels = (pixels / MIN_LABEL_SPACING).max(2.0) as i64;
    match X_AXIS[chosen..]
        .iter()
        .find(|(_, step, _, _)| range / step <= max_labels)
    {
        Some((_, step, format, _)) => (*step, format),
        None => {
            let day = 86400;
            let days = (range / max_labels / day + 1).max(1);
            (days * day, X_AXIS[X_AXIS.len() - 1].2)
        }
    }
}

/// The plot area and its scales.
struct Plot {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    start: i64,
    end: i64,
    y: YAxis,
}

impl Plot {
    fn x(&self, timestamp: i64) -> f64 {
        let span = (self.end as f64 - self.start as f64).max(1.0);
        self.left + (timestamp as f64 - self.start as f64) / span * (self.right - self.left)
    }

    fn y(&self, value: f64) -> f64 {
        let value = value.clamp(self.y.bottom, self.y.top);
        let span = self.y.top - self.y.bottom;
        self.bottom - (value - self.y.bottom) / span * (self.bottom - self.top)
    }

    fn draw_axes(&self, svg: &mut String) {
        let mut grid = String::new();
        let mut labels = String::new();
        // About five by construction; the bound is against rounding surprises.
        let steps = (((self.y.top - self.y.bottom) / self.y.step).round() as i64).clamp(1, 100);
        for i in 0..=steps {
            let value = self.y.bottom + i as f64 * self.y.step;
            let y = num(self.y(value));
            grid.push_str(&format!("M{} {y}H{}", num(self.left), num(self.right)));
            labels.push_str(&format!(
                "<text x=\"{}\" y=\"{y}\" text-anchor=\"end\" dy=\"3\">{}</text>\n",
                num(self.left - 4.0),
                value_label(value, self.y.step)
            ));
        }
        let (step, format) = x_axis(self.end.saturating_sub(self.start), self.right - self.left);
        let mut next = self.start.checked_add((step - self.start.rem_euclid(step)) % step);
        while let Some(t) = next.filter(|t| *t <= self.end) {
            next = t.checked_add(step);
            let x = self.x(t);
            grid.push_str(&format!("M{} {}V{}", num(x), num(self.top), num(self.bottom)));
            let label = format_time(t, format);
            // A label that would run off the image ends at its edge instead
            // (a cut "Wed 16:0" reads as a wrong time).
            let half = label.chars().count() as f64 * CHAR_WIDTH / 2.0;
            let (anchor_x, anchor) = match x + half > self.right + MARGIN {
                true => (self.right + MARGIN - 1.0, "end"),
                false => (x, "middle"),
            };
            labels.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\">{label}</text>\n",
                num(anchor_x),
                num(self.bottom + 12.0),
            ));
        }
        svg.push_str(&format!(
            "<path d=\"{grid}\" stroke=\"#afafaf\" stroke-width=\"0.5\" fill=\"none\"/>\n"
        ));
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" stroke=\"#000000\" fill=\"none\"/>\n",
            num(self.left),
            num(self.top),
            num(self.right - self.left),
            num(self.bottom - self.top)
        ));
        svg.push_str(&labels);
    }

    /// One line per run of present points; a missing point breaks it.
    fn draw_series(&self, svg: &mut String, series: &Series, color: &str) {
        let mut d = String::new();
        let mut drawing = false;
        for (value, timestamp) in series.datapoints() {
            match value.filter(|v| v.is_finite()) {
                Some(v) => {
                    d.push_str(&format!(
                        "{}{} {}",
                        if drawing { "L" } else { "M" },
                        num(self.x(timestamp)),
                        num(self.y(v))
                    ));
                    drawing = true;
                }
                None => drawing = false,
            }
        }
        if d.is_empty() {
            return;
        }
        svg.push_str(&format!(
            "<path d=\"{d}\" stroke=\"{color}\" stroke-width=\"1.5\" fill=\"none\"><title>{}</title></path>\n",
            escape(&series.name)
        ));
    }
}

/// A row per series (a colour box and the name, shortened to the width),
/// and a last row counting those left out.
fn draw_legend(svg: &mut String, series: &[Series], top: f64, width: f64) {
    let fits = ((width - 2.0 * MARGIN - 16.0) / CHAR_WIDTH).max(4.0) as usize;
    for (i, s) in series.iter().take(MAX_LEGEND_ROWS).enumerate() {
        let y = top + i as f64 * LINE_HEIGHT;
        let name: String = match s.name.chars().count() > fits {
            true => s.name.chars().take(fits - 1).chain(['…']).collect(),
            false => s.name.clone(),
        };
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            num(MARGIN),
            num(y),
            LINE_COLORS[i % LINE_COLORS.len()],
            num(MARGIN + 14.0),
            num(y + 9.0),
            escape(&name)
        ));
    }
    if series.len() > MAX_LEGEND_ROWS {
        let y = top + MAX_LEGEND_ROWS as f64 * LINE_HEIGHT;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\">and {} more</text>\n",
            num(MARGIN),
            num(y + 9.0),
            series.len() - MAX_LEGEND_ROWS
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that every tag is closed in order and attributes are quoted:
    /// enough to know a browser reads the document as written.
    fn assert_well_formed(svg: &str) {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("a tag ends") + start;
            let tag = &rest[start + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "in {svg}");
            } else if !tag.ends_with('/') {
                open.push(tag.split(' ').next().unwrap());
            }
            assert_eq!(tag.matches('"').count() % 2, 0, "{tag}");
            rest = &rest[end + 1..];
        }
        assert!(open.is_empty(), "unclosed {open:?}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn nothing_to_draw_says_so() {
        let svg = render_svg(&[], &SvgOptions::default());
        assert_eq!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"330\" height=\"250\" viewBox=\"0 0 330 250\" \
             font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"330\" height=\"250\" fill=\"#ffffff\"/>\n\
             <text x=\"165\" y=\"125\" text-anchor=\"middle\" font-size=\"14\">No Data</text>\n</svg>\n"
        );
        let empty = Series::new("a", 0, 60, vec![None, None]);
        assert!(render_svg(&[empty], &SvgOptions::default()).contains(">No Data<"));
    }

    #[test]
    fn a_series_is_a_line_broken_at_missing_points() {
        // An hour at 10 minutes: values 0..=4 with a gap, on a 400 × 200 chart.
        let s = Series::new(
            "web1 <&>",
            0,
            600,
            vec![Some(0.0), Some(1.0), None, Some(3.0), Some(4.0), Some(4.0)],
        );
        let options = SvgOptions {
            width: 400,
            height: 200,
            title: Some("CPU \"now\"".into()),
        };
        let svg = render_svg(&[s], &options);
        assert_well_formed(&svg);
        assert!(svg.contains(">CPU &quot;now&quot;</text>"), "{svg}");
        // Plot from x 58 to 390 over 0..3600 s, y from 28 (value 4) to 160 (value 0).
        assert!(
            svg.contains(
                "<path d=\"M58 160L113.3 127M224 61L279.3 28L334.7 28\" stroke=\"#6464ff\" \
                 stroke-width=\"1.5\" fill=\"none\"><title>web1 &lt;&amp;&gt;</title></path>"
            ),
            "{svg}"
        );
        // Labels every 1 (step of a 0..4 range), times every 20 minutes
        // (graphite's choice for 10.8 s a pixel over an hour).
        for label in [
            ">0</text>",
            ">1</text>",
            ">4</text>",
            ">00:00</text>",
            ">00:20</text>",
            ">01:00</text>",
        ] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        assert!(svg.contains(">web1 &lt;&amp;&gt;</text>"), "{svg}");
        // The last time label would pass the right edge: it ends there.
        assert!(
            svg.contains("<text x=\"399\" y=\"172\" text-anchor=\"end\">01:00</text>"),
            "{svg}"
        );
    }

    #[test]
    fn colours_cycle_and_the_legend_is_bounded() {
        let many: Vec<Series> = (0..15)
            .map(|i| Series::new(&format!("s{i}"), 0, 60, vec![Some(f64::from(i))]))
            .collect();
        let svg = render_svg(&many, &SvgOptions::default());
        assert_well_formed(&svg);
        assert_eq!(svg.matches("stroke=\"#6464ff\"").count(), 2);
        assert!(svg.contains(">and 3 more</text>"));
        assert!(svg.contains(">s11</text>") && !svg.contains(">s12</text>"));
        let long = Series::new(&"x".repeat(200), 0, 60, vec![Some(1.0)]);
        let svg = render_svg(&[long], &SvgOptions::default());
        // (330 - 2 × 10 - 16) / 6 = 49 characters fit.
        assert!(svg.contains(&format!(">{}…</text>", "x".repeat(48))), "{svg}");
    }

    #[test]
    fn value_axis_steps_and_labels() {
        assert_eq!(
            y_axis(0.0, 4.0),
            YAxis {
                bottom: 0.0,
                top: 4.0,
                step: 1.0
            }
        );
        assert_eq!(
            y_axis(3.0, 3.0),
            YAxis {
                bottom: 2.0,
                top: 4.0,
                step: 0.5
            }
        );
        assert_eq!(
            y_axis(1e20, 1e20),
            YAxis {
                bottom: 9e19,
                top: 1.1e20,
                step: 5e18
            }
        );
        assert_eq!(
            y_axis(-7.0, 93.0),
            YAxis {
                bottom: -20.0,
                top: 100.0,
                step: 20.0
            }
        );
        assert_eq!(y_axis(0.001, 0.004).step, 0.001);
        assert_eq!(value_label(2_500_000.0, 500_000.0), "2.5M");
        assert_eq!(value_label(1500.0, 500.0), "1.5K");
        assert_eq!(value_label(0.25, 0.05), "0.25");
        assert_eq!(value_label(-0.0, 1.0), "0");
        assert_eq!(value_label(40.0, 20.0), "40");
    }

    #[test]
    fn time_axis_as_graphite_chooses_it() {
        // 12 s a pixel: graphite's (10 s, 20-minute labels) configuration.
        assert_eq!(x_axis(3600, 300.0), (1200, "%H:%M"));
        assert_eq!(x_axis(86400, 300.0), (43200, "%m/%d %H:%M"));
        assert_eq!(x_axis(7 * 86400, 300.0), (2 * 86400, "%m/%d"));
        assert_eq!(x_axis(60, 300.0), (15, "%H:%M:%S"));
        // Five years on 300 pixels: graphite's 120-day step would put labels
        // 20 pixels apart; five labels at most, a year and a day apart.
        assert_eq!(x_axis(5 * 365 * 86400, 300.0), (366 * 86400, "%m/%d %Y"));
        // 23 days on 3000 pixels: no configuration is narrow and long enough
        // (graphite falls back to 5 s); the first with at most 50 labels.
        assert_eq!(x_axis(2_000_000, 3000.0), (43200, "%m/%d %H:%M"));
        let (step, format) = x_axis(i64::MAX, 300.0);
        assert_eq!(format, "%m/%d %Y");
        assert!(i64::MAX / step <= 5, "{step}");
    }

    #[test]
    fn hostile_values_and_sizes_stay_well_formed() {
        let s = Series::new(
            "a\u{0}b",
            0,
            1,
            vec![Some(f64::MAX), Some(f64::MIN), Some(f64::NAN), Some(1e-300)],
        );
        for (width, height) in [(0, 0), (1, 1), (50, 20), (2000, 1000)] {
            let svg = render_svg(
                std::slice::from_ref(&s),
                &SvgOptions {
                    width,
                    height,
                    title: None,
                },
            );
            assert_well_formed(&svg);
            assert!(svg.contains("a\u{fffd}b"));
        }
    }

    use proptest::prelude::*;

    proptest! {
        /// Any values at any size make a well-formed document.
        #[test]
        fn any_chart_is_well_formed(
            values in prop::collection::vec(prop::option::of(any::<f64>()), 0..20),
            start in -1_000_000_000i64..4_000_000_000,
            step in 1i64..100_000,
            width in 0u32..3000,
            height in 0u32..3000,
        ) {
            let s = Series::new("a", start, step, values);
            let options = SvgOptions { width, height, title: Some("t".into()) };
            assert_well_formed(&render_svg(&[s], &options));
        }
    }
}
