//! Evaluating render targets: graphite-web's functions (`render/functions.py`)
//! over series fetched through a callback, so that this module needs no
//! store. Arguments are bound and checked as graphite-web's `validateParams`
//! does (with `ENFORCE_INPUT_VALIDATION`: a bad argument is an error, never
//! passed on), and [`functions_json`] describes the functions the way
//! graphite-web's `/functions` does, so that Grafana's editor offers them.
//!
//! Supported: `alias`, `aliasByNode`, `aliasSub`, `sumSeries` (`sum`),
//! `averageSeries` (`avg`), `minSeries`, `maxSeries`, `group`, `scale`,
//! `offset`, `absolute`, `derivative`, `nonNegativeDerivative`, `perSecond`,
//! `summarize`, `movingAverage`, `keepLastValue`, `highestCurrent`, `limit`,
//! `constantLine`, `sortByName`. Names, tags, `None` handling and step
//! consolidation follow graphite-web; sums add left to right (Python 3.12's
//! `sum` compensates rounding, older ones do not).

use super::expr::{self, Call, Expr};
use super::pyfmt;
use super::resub::Substitution;
use super::series::{average, Series, TagValue};
use super::time::parse_offset;

/// How series are found: a path expression and the time range (from,
/// until) to the series it names, each on its own step grid. The evaluator
/// sorts them by name, as graphite-web's `fetchData` does.
pub type Fetch<'a> = dyn FnMut(&str, i64, i64) -> Result<Vec<Series>, String> + 'a;

/// The most points `summarize` makes of one series: its interval is the
/// caller's, so `summarize(x, "1s")` over a year would otherwise ask for 31
/// million. A million (8 MB of values) covers a year of 1-minute points
/// (525,600).
pub const MAX_SUMMARIZE_POINTS: i64 = 1_000_000;

/// Why a target cannot be evaluated; the text is the one-line reason of a
/// `400` answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("unknown function {0}")]
    UnknownFunction(String),
    /// A function's arguments are wrong, or it cannot work on them.
    #[error("{function}: {reason}")]
    Argument { function: &'static str, reason: String },
    /// A target that is a number or a string, not series.
    #[error("target is not a series list")]
    NotSeries,
    /// The fetch callback failed (a bad path expression, say).
    #[error("{0}")]
    Fetch(String),
}

/// Evaluates one target between `from` and `until` (seconds).
pub fn evaluate(target: &Expr, from: i64, until: i64, fetch: &mut Fetch<'_>) -> Result<Vec<Series>, EvalError> {
    let mut evaluator = Evaluator { fetch, from, until };
    match evaluator.eval(target)? {
        Value::Series(series) => Ok(series),
        _ => Err(EvalError::NotSeries),
    }
}

/// The functions that hand on the points of the series they are given
/// untouched, on the same grid over the same window: they only name,
/// order or gather series. A target made of paths and these alone
/// (Grafana's `aliasSub(<path>, "(^.*$)", "\\1 A")`) gives the same answer
/// whether its series are consolidated for `maxDataPoints` before or after
/// the functions run; so such series can be consolidated as they are
/// fetched, never held whole. Every other function reads the values, makes
/// new ones or moves the window.
const POINTS_THROUGH: [&str; 6] = ["alias", "aliasByNode", "aliasSub", "group", "limit", "sortByName"];

/// Whether `target` is a path, or one of `POINTS_THROUGH` over such
/// targets and literal arguments.
pub fn passes_points_through(target: &Expr) -> bool {
    match target {
        Expr::Path(_) => true,
        Expr::Call(call) => {
            POINTS_THROUGH.contains(&call.name.as_str())
                && call
                    .args
                    .iter()
                    .chain(call.kwargs.iter().map(|(_, e)| e))
                    .all(|arg| match arg {
                        Expr::Path(_) | Expr::Call(_) => passes_points_through(arg),
                        _ => true,
                    })
        }
        _ => false,
    }
}

/// An evaluated argument.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Series(Vec<Series>),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
}

impl Value {
    /// The value as graphite-web's messages show it (Python's `repr`).
    fn describe(&self) -> String {
        match self {
            Value::Series(_) => "a series list".into(),
            Value::Int(i) => i.to_string(),
            Value::Float(x) => pyfmt::repr(*x),
            Value::Str(s) => format!("'{s}'"),
            Value::Bool(b) => (if *b { "True" } else { "False" }).into(),
            Value::None => "None".into(),
        }
    }
}

struct Evaluator<'f, 'a> {
    fetch: &'f mut Fetch<'a>,
    from: i64,
    until: i64,
}

impl Evaluator<'_, '_> {
    fn eval(&mut self, expr: &Expr) -> Result<Value, EvalError> {
        Ok(match expr {
            Expr::Path(path) => {
                let mut series = (self.fetch)(path, self.from, self.until).map_err(EvalError::Fetch)?;
                if series.iter().any(|s| s.step < 1) {
                    return Err(EvalError::Fetch(format!("{path}: a series with a step below 1 s")));
                }
                series.sort_by(|a, b| a.name.cmp(&b.name));
                Value::Series(series)
            }
            Expr::Call(call) => Value::Series(self.call(call)?),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(x) => Value::Float(*x),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::None => Value::None,
        })
    }

    fn call(&mut self, call: &Call) -> Result<Vec<Series>, EvalError> {
        let def = find_function(&call.name).ok_or_else(|| EvalError::UnknownFunction(call.name.clone()))?;
        let args = call.args.iter().map(|a| self.eval(a)).collect::<Result<Vec<_>, _>>()?;
        let mut kwargs = Vec::with_capacity(call.kwargs.len());
        for (key, arg) in &call.kwargs {
            kwargs.push((key.as_str(), self.eval(arg)?));
        }
        let bound = bind(def, args, kwargs)?;
        (def.run)(self, call, bound)
    }
}

/// A parameter's type, named as graphite-web names it in `/functions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    SeriesList,
    Float,
    Integer,
    IntOrInf,
    IntOrInterval,
    Interval,
    String,
    Boolean,
    AggFunc,
    NodeOrTag,
}

impl ParamType {
    pub fn name(self) -> &'static str {
        match self {
            ParamType::SeriesList => "seriesList",
            ParamType::Float => "float",
            ParamType::Integer => "integer",
            ParamType::IntOrInf => "intOrInf",
            ParamType::IntOrInterval => "intOrInterval",
            ParamType::Interval => "interval",
            ParamType::String => "string",
            ParamType::Boolean => "boolean",
            ParamType::AggFunc => "aggFunc",
            ParamType::NodeOrTag => "nodeOrTag",
        }
    }
}

/// A literal in `/functions`: a default or a suggestion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Literal {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    /// graphite's `INF` (`keepLastValue`'s default limit).
    Infinity,
}

/// One parameter of a function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamType,
    pub required: bool,
    pub multiple: bool,
    pub default: Option<Literal>,
    pub suggestions: &'static [Literal],
}

const fn param(name: &'static str, kind: ParamType) -> Param {
    Param {
        name,
        kind,
        required: false,
        multiple: false,
        default: None,
        suggestions: &[],
    }
}

const fn required(name: &'static str, kind: ParamType) -> Param {
    Param {
        required: true,
        ..param(name, kind)
    }
}

const fn with_default(name: &'static str, kind: ParamType, default: Literal) -> Param {
    Param {
        default: Some(default),
        ..param(name, kind)
    }
}

const SERIES_LIST: Param = required("seriesList", ParamType::SeriesList);
const SERIES_LISTS: Param = Param {
    multiple: true,
    ..required("seriesLists", ParamType::SeriesList)
};

/// The parameters of the counter functions (`nonNegativeDerivative`,
/// `perSecond`): a wrap value and a reset value.
const COUNTER_PARAMS: &[Param] = &[
    SERIES_LIST,
    param("maxValue", ParamType::Float),
    param("minValue", ParamType::Float),
];

type Run = fn(&mut Evaluator<'_, '_>, &Call, Bound) -> Result<Vec<Series>, EvalError>;

/// A supported function.
pub struct FunctionDef {
    pub name: &'static str,
    /// graphite-web's group (`Combine`, `Transform`, …).
    pub group: &'static str,
    pub description: &'static str,
    pub params: &'static [Param],
    run: Run,
}

/// graphite-web's aggregation functions (`functions/aggfuncs.py`), in its
/// order, then its aliases: the options of an `aggFunc` parameter.
const AGG_FUNCS: [&str; 16] = [
    "average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range", "multiply", "last",
    "rangeOf", "avg", "total", "current",
];

/// The supported functions.
pub static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "alias",
        group: "Alias",
        description: "Takes a series list and gives every series the name newName.",
        params: &[SERIES_LIST, required("newName", ParamType::String)],
        run: |_, _, mut b| {
            let name = b.text(1)?;
            let mut series = b.series(0);
            series.iter_mut().for_each(|s| s.name.clone_from(&name));
            Ok(series)
        },
    },
    FunctionDef {
        name: "aliasByNode",
        group: "Alias",
        description: "Names each series by the given nodes of its path (0 is the first, -1 the last), \
                      or by tag values for string arguments, joined with dots.",
        params: &[
            SERIES_LIST,
            Param {
                multiple: true,
                ..required("nodes", ParamType::NodeOrTag)
            },
        ],
        run: |_, _, mut b| {
            let nodes = b.all(1);
            let mut series = b.series(0);
            for s in &mut series {
                s.name = node_key(s, &nodes);
            }
            Ok(series)
        },
    },
    FunctionDef {
        name: "aliasSub",
        group: "Alias",
        description: "Runs a regular expression search and replace on each series name \
                      (Python's re.sub: \\1 or \\g<name> in the replacement).",
        params: &[
            SERIES_LIST,
            required("search", ParamType::String),
            required("replace", ParamType::String),
        ],
        run: |_, _, mut b| {
            let (search, replace) = (b.text(1)?, b.text(2)?);
            let substitution = Substitution::new(&search, &replace).map_err(|e| b.error(e.to_string()))?;
            let mut series = b.series(0);
            for s in &mut series {
                s.name = substitution.apply(&s.name);
            }
            Ok(series)
        },
    },
    aggregate_def("sumSeries", "Adds the series together point by point.", |_, _, b| {
        aggregate(b, AggFunc::Sum, "sum")
    }),
    aggregate_def("sum", "Short form of sumSeries.", |_, _, b| {
        aggregate(b, AggFunc::Sum, "sum")
    }),
    aggregate_def("averageSeries", "Averages the series point by point.", |_, _, b| {
        aggregate(b, AggFunc::Average, "average")
    }),
    aggregate_def("avg", "Short form of averageSeries.", |_, _, b| {
        aggregate(b, AggFunc::Average, "average")
    }),
    aggregate_def(
        "minSeries",
        "The lowest value of the series at each point.",
        |_, _, b| aggregate(b, AggFunc::Min, "min"),
    ),
    aggregate_def(
        "maxSeries",
        "The highest value of the series at each point.",
        |_, _, b| aggregate(b, AggFunc::Max, "max"),
    ),
    FunctionDef {
        name: "group",
        group: "Combine",
        description: "Takes any number of series lists and returns them as one list.",
        params: &[Param {
            multiple: true,
            ..param("seriesLists", ParamType::SeriesList)
        }],
        run: |_, _, mut b| Ok(b.series_lists(0)),
    },
    FunctionDef {
        name: "scale",
        group: "Transform",
        description: "Multiplies each point by factor.",
        params: &[SERIES_LIST, required("factor", ParamType::Float)],
        run: |_, _, mut b| {
            let factor = b.float(1)?;
            Ok(transform(b.series(0), |s| {
                s.tags.set("scale", TagValue::Float(factor));
                s.rename(format!("scale({},{})", s.name, pyfmt::format_g(factor)));
                map_values(s, |v| v * factor);
            }))
        },
    },
    FunctionDef {
        name: "offset",
        group: "Transform",
        description: "Adds factor to each point.",
        params: &[SERIES_LIST, required("factor", ParamType::Float)],
        run: |_, _, mut b| {
            let factor = b.float(1)?;
            Ok(transform(b.series(0), |s| {
                s.tags.set("offset", TagValue::Float(factor));
                s.rename(format!("offset({},{})", s.name, pyfmt::format_g(factor)));
                map_values(s, |v| v + factor);
            }))
        },
    },
    FunctionDef {
        name: "absolute",
        group: "Transform",
        description: "The absolute value of each point.",
        params: &[SERIES_LIST],
        run: |_, _, mut b| {
            Ok(transform(b.series(0), |s| {
                mark(s, "absolute");
                map_values(s, f64::abs);
            }))
        },
    },
    FunctionDef {
        name: "derivative",
        group: "Transform",
        description: "The difference between each point and the one before it.",
        params: &[SERIES_LIST],
        run: |_, _, mut b| {
            Ok(transform(b.series(0), |s| {
                let mut previous = None;
                for value in &mut s.values {
                    let current = *value;
                    *value = match (previous, current) {
                        (Some(p), Some(c)) => Some(c - p),
                        _ => None,
                    };
                    previous = current;
                }
                mark(s, "derivative");
            }))
        },
    },
    FunctionDef {
        name: "nonNegativeDerivative",
        group: "Transform",
        description: "The increase of a counter between points: a decrease is a wrap (with maxValue) or a reset.",
        params: COUNTER_PARAMS,
        run: |_, _, mut b| {
            let (max, min) = (b.optional_float(1)?, b.optional_float(2)?);
            Ok(transform(b.series(0), |s| {
                non_negative_deltas(&mut s.values, max, min);
                mark(s, "nonNegativeDerivative");
            }))
        },
    },
    FunctionDef {
        name: "perSecond",
        group: "Transform",
        description: "The increase of a counter per second, as nonNegativeDerivative divided by the step.",
        params: COUNTER_PARAMS,
        run: |_, _, mut b| {
            let (max, min) = (b.optional_float(1)?, b.optional_float(2)?);
            Ok(transform(b.series(0), |s| {
                non_negative_deltas(&mut s.values, max, min);
                let step = s.step as f64;
                map_values(s, |delta| round6(delta / step));
                mark(s, "perSecond");
            }))
        },
    },
    FunctionDef {
        name: "summarize",
        group: "Transform",
        description: "Summarizes each series into buckets of intervalString (10min, 1h, 1d) with func; \
                      buckets align to the interval, or to the start with alignToFrom.",
        params: &[
            SERIES_LIST,
            Param {
                suggestions: &[Literal::Str("10min"), Literal::Str("1h"), Literal::Str("1d")],
                ..required("intervalString", ParamType::Interval)
            },
            with_default("func", ParamType::AggFunc, Literal::Str("sum")),
            with_default("alignToFrom", ParamType::Boolean, Literal::Bool(false)),
        ],
        run: summarize,
    },
    FunctionDef {
        name: "movingAverage",
        group: "Calculate",
        description: "The average of each point and those before it in a window of windowSize points \
                      (a number) or time (a string such as 5min).",
        params: &[
            SERIES_LIST,
            Param {
                suggestions: &[
                    Literal::Int(5),
                    Literal::Int(7),
                    Literal::Int(10),
                    Literal::Str("1min"),
                    Literal::Str("5min"),
                    Literal::Str("10min"),
                    Literal::Str("30min"),
                    Literal::Str("1hour"),
                ],
                ..required("windowSize", ParamType::IntOrInterval)
            },
            param("xFilesFactor", ParamType::Float),
        ],
        run: moving_average,
    },
    FunctionDef {
        name: "keepLastValue",
        group: "Transform",
        description: "Fills runs of up to limit missing points with the value before them.",
        params: &[
            SERIES_LIST,
            with_default("limit", ParamType::IntOrInf, Literal::Infinity),
        ],
        run: |_, _, mut b| {
            let limit = match b.take(1) {
                Some(Value::Int(n)) => n as f64,
                Some(Value::Float(x)) => x,
                _ => f64::INFINITY,
            };
            Ok(transform(b.series(0), |s| {
                s.rename(format!("keepLastValue({})", s.name));
                keep_last_value(&mut s.values, limit);
            }))
        },
    },
    FunctionDef {
        name: "highestCurrent",
        group: "Filter Series",
        description: "The n series whose last value is highest.",
        params: &[SERIES_LIST, required("n", ParamType::Integer)],
        run: |_, _, mut b| {
            let n = b.int(1)?;
            let mut series = b.series(0);
            let current = |s: &Series| {
                s.values
                    .iter()
                    .rev()
                    .flatten()
                    .next()
                    .copied()
                    .unwrap_or(f64::NEG_INFINITY)
            };
            series.sort_by(|a, b| current(b).total_cmp(&current(a)));
            series.truncate(python_slice_end(series.len(), n));
            Ok(series)
        },
    },
    FunctionDef {
        name: "limit",
        group: "Filter Series",
        description: "The first n series.",
        params: &[SERIES_LIST, required("n", ParamType::Integer)],
        run: |_, _, mut b| {
            let n = b.int(1)?;
            let mut series = b.series(0);
            series.truncate(python_slice_end(series.len(), n));
            Ok(series)
        },
    },
    FunctionDef {
        name: "constantLine",
        group: "Special",
        description: "A horizontal line at value over the whole time range.",
        params: &[required("value", ParamType::Float)],
        run: |evaluator, _, mut b| {
            let value = b.float(0)?;
            let (start, end) = (evaluator.from, evaluator.until);
            // graphite-web: three points, at start, the middle and end. A
            // range shorter than 2 s would make a step of 0, which graphite
            // cannot answer either; 1 keeps the grid valid.
            let step = ((end - start) / 2).max(1);
            let name = pyfmt::repr(value);
            let mut series = Series::new(&name, start, step, vec![Some(value); 3]);
            series.end = end;
            series.path_expression = format!("constantLine({name})");
            Ok(vec![series])
        },
    },
    FunctionDef {
        name: "sortByName",
        group: "Sorting",
        description: "Sorts the series by name; natural sorts numbers in names by value.",
        params: &[
            SERIES_LIST,
            with_default("natural", ParamType::Boolean, Literal::Bool(false)),
            with_default("reverse", ParamType::Boolean, Literal::Bool(false)),
        ],
        run: |_, _, mut b| {
            let natural = b.optional_bool(1)?.unwrap_or(false);
            let reverse = b.optional_bool(2)?.unwrap_or(false);
            let mut keyed: Vec<(String, Series)> = b
                .series(0)
                .into_iter()
                .map(|s| (if natural { natural_key(&s.name) } else { s.name.clone() }, s))
                .collect();
            // Stable either way: Python's sort(reverse=True) keeps equal
            // names in their order.
            match reverse {
                false => keyed.sort_by(|a, b| a.0.cmp(&b.0)),
                true => keyed.sort_by(|a, b| b.0.cmp(&a.0)),
            }
            Ok(keyed.into_iter().map(|(_, s)| s).collect())
        },
    },
];

/// The definition of a supported function, by name.
pub fn find_function(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

const fn aggregate_def(name: &'static str, description: &'static str, run: Run) -> FunctionDef {
    FunctionDef {
        name,
        group: "Combine",
        description,
        params: &[SERIES_LISTS],
        run,
    }
}

/// Arguments bound to parameters: one list of values per parameter (more
/// than one only for a `multiple` one), already converted to its type.
struct Bound {
    function: &'static str,
    slots: Vec<Vec<Value>>,
}

impl Bound {
    fn error(&self, reason: impl Into<String>) -> EvalError {
        EvalError::Argument {
            function: self.function,
            reason: reason.into(),
        }
    }

    fn take(&mut self, i: usize) -> Option<Value> {
        let slot = self.slots.get_mut(i)?;
        (!slot.is_empty()).then(|| slot.remove(0))
    }

    fn all(&mut self, i: usize) -> Vec<Value> {
        self.slots.get_mut(i).map(std::mem::take).unwrap_or_default()
    }

    /// A series list parameter (binding made sure of its type).
    fn series(&mut self, i: usize) -> Vec<Series> {
        self.series_lists(i)
    }

    /// All the series lists of a `multiple` parameter, one after another.
    fn series_lists(&mut self, i: usize) -> Vec<Series> {
        let mut out = Vec::new();
        for value in self.all(i) {
            if let Value::Series(series) = value {
                out.extend(series);
            }
        }
        out
    }

    fn optional_float(&mut self, i: usize) -> Result<Option<f64>, EvalError> {
        match self.take(i) {
            None => Ok(None),
            Some(Value::Float(x)) => Ok(Some(x)),
            Some(other) => Err(self.error(format!("expected a number, got {}", other.describe()))),
        }
    }

    fn float(&mut self, i: usize) -> Result<f64, EvalError> {
        self.optional_float(i)?.ok_or_else(|| self.error("missing number"))
    }

    fn int(&mut self, i: usize) -> Result<i64, EvalError> {
        match self.take(i) {
            Some(Value::Int(n)) => Ok(n),
            _ => Err(self.error("expected an integer")),
        }
    }

    fn text(&mut self, i: usize) -> Result<String, EvalError> {
        match self.take(i) {
            Some(Value::Str(s)) => Ok(s),
            _ => Err(self.error("expected a string")),
        }
    }

    fn optional_bool(&mut self, i: usize) -> Result<Option<bool>, EvalError> {
        match self.take(i) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.error("expected a boolean")),
        }
    }
}

/// graphite-web's `validateParams`: positional arguments fill parameters in
/// order (extra ones go to a last `multiple` parameter), keyword arguments
/// fill the rest by name; each value is checked and converted.
fn bind(def: &'static FunctionDef, args: Vec<Value>, kwargs: Vec<(&str, Value)>) -> Result<Bound, EvalError> {
    let params = def.params;
    let mut bound = Bound {
        function: def.name,
        slots: vec![Vec::new(); params.len()],
    };
    let last_multiple = params.last().is_some_and(|p| p.multiple);
    let overflow = args.len() + kwargs.len() > params.len();
    if overflow && !last_multiple {
        return Err(bound.error("too many parameters"));
    }
    let positional = args.len();
    for (i, arg) in args.into_iter().enumerate() {
        let index = i.min(params.len().saturating_sub(1));
        let param = params.get(index).ok_or_else(|| bound.error("takes no parameters"))?;
        if let Some(value) = check(param, arg).map_err(|reason| bound.error(reason))? {
            bound.slots[index].push(value);
        }
    }
    let mut used = 0;
    let keyword_params = if overflow { &[][..] } else { &params[positional..] };
    for (offset, param) in keyword_params.iter().enumerate() {
        // The last one given wins, as in a Python dict.
        let given = kwargs.iter().rev().find(|(key, _)| *key == param.name);
        match given.map(|(_, v)| v.clone()) {
            None | Some(Value::None) if param.required => {
                return Err(bound.error(format!("missing required parameter {}", param.name)));
            }
            None | Some(Value::None) => {}
            Some(value) => {
                used += kwargs.iter().filter(|(key, _)| *key == param.name).count();
                if let Some(value) = check(param, value).map_err(|reason| bound.error(reason))? {
                    bound.slots[positional + offset].push(value);
                }
            }
        }
    }
    if used < kwargs.len() {
        let unexpected: Vec<&str> = kwargs
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !keyword_params.iter().any(|p| p.name == *k))
            .collect();
        return Err(bound.error(format!("unexpected keyword arguments: {}", unexpected.join(", "))));
    }
    Ok(bound)
}

/// graphite-web's `validateValue`: `None` leaves an optional parameter
/// unset; otherwise the value must be of the parameter's type, converted as
/// graphite's validators convert (an integer is a float, `"true"` a boolean).
fn check(param: &Param, value: Value) -> Result<Option<Value>, String> {
    if value == Value::None {
        return match param.required {
            true => Err(format!("parameter {} may not be none", param.name)),
            false => Ok(None),
        };
    }
    let invalid = || format!("invalid {} value for parameter {}", param.kind.name(), param.name);
    let checked = match (param.kind, value) {
        (ParamType::SeriesList, v @ Value::Series(_)) => v,
        (ParamType::Float, Value::Int(i)) => Value::Float(i as f64),
        (ParamType::Float, v @ Value::Float(_)) => v,
        (ParamType::Float, Value::Bool(b)) => Value::Float(f64::from(u8::from(b))),
        (ParamType::Float, Value::Str(s)) => Value::Float(s.trim().parse().map_err(|_| invalid())?),
        (ParamType::Integer | ParamType::IntOrInf, v @ Value::Int(_)) => v,
        (ParamType::Integer | ParamType::IntOrInf, Value::Bool(b)) => Value::Int(i64::from(b)),
        (ParamType::Integer | ParamType::IntOrInf, Value::Str(s)) => {
            Value::Int(s.trim().parse().map_err(|_| invalid())?)
        }
        (ParamType::IntOrInf, Value::Float(x)) if x == f64::INFINITY => Value::Float(x),
        (ParamType::Interval, Value::Str(s)) if parse_offset(&s).is_ok() => Value::Str(s),
        (ParamType::AggFunc, Value::Str(s)) if AGG_FUNCS.contains(&s.as_str()) => Value::Str(s),
        (ParamType::AggFunc, v) => {
            return Err(format!("invalid option for parameter {}: {}", param.name, v.describe()))
        }
        (ParamType::Boolean, v @ Value::Bool(_)) => v,
        (ParamType::Boolean, Value::Str(s)) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
        (ParamType::Boolean, Value::Str(s)) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
        (ParamType::Boolean, Value::Int(i @ (0 | 1))) => Value::Bool(i == 1),
        (ParamType::Boolean, Value::Float(x)) if x == 0.0 || x == 1.0 => Value::Bool(x == 1.0),
        (
            ParamType::String | ParamType::IntOrInterval | ParamType::NodeOrTag,
            v @ (Value::Str(_) | Value::Int(_) | Value::Float(_)),
        ) => v,
        (ParamType::String | ParamType::IntOrInterval | ParamType::NodeOrTag, v @ Value::Bool(_)) => v,
        _ => return Err(invalid()),
    };
    Ok(Some(checked))
}

/// Applies `f` to every series of a list, in place.
fn transform(mut series: Vec<Series>, f: impl FnMut(&mut Series)) -> Vec<Series> {
    series.iter_mut().for_each(f);
    series
}

/// Applies `f` to every present value.
fn map_values(series: &mut Series, f: impl Fn(f64) -> f64) {
    for value in series.values.iter_mut().flatten() {
        *value = f(*value);
    }
}

/// Python's `round(x, 6)`: the correctly rounded decimal, read back.
fn round6(x: f64) -> f64 {
    format!("{x:.6}").parse().unwrap_or(x)
}

/// How many items `list[:n]` keeps in Python.
fn python_slice_end(len: usize, n: i64) -> usize {
    match usize::try_from(n) {
        Ok(n) => n.min(len),
        Err(_) => len.saturating_sub(n.unsigned_abs().try_into().unwrap_or(usize::MAX)),
    }
}

/// Tags a series `<func>: 1` and names it `<func>(<name>)`, as graphite's
/// transforms without arguments do.
fn mark(series: &mut Series, func: &str) {
    series.tags.set(func, TagValue::Int(1));
    series.rename(format!("{func}({})", series.name));
}

/// Every value replaced by its delta from the one before it by
/// [`non_negative_delta`].
fn non_negative_deltas(values: &mut [Option<f64>], max: Option<f64>, min: Option<f64>) {
    let mut previous = None;
    for value in values {
        (*value, previous) = non_negative_delta(*value, previous, max, min);
    }
}

/// graphite-web's `_nonNegativeDelta`: (the delta, the new previous value).
fn non_negative_delta(
    value: Option<f64>,
    previous: Option<f64>,
    max: Option<f64>,
    min: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let Some(v) = value else { return (None, None) };
    if max.is_some_and(|m| v > m) || min.is_some_and(|m| v < m) {
        return (None, None);
    }
    let Some(p) = previous else { return (None, Some(v)) };
    if v >= p {
        return (Some(v - p), Some(v));
    }
    match (max, min) {
        // A counter that wrapped at max.
        (Some(max), min) => (Some(max + 1.0 + v - p - min.unwrap_or(0.0)), Some(v)),
        // A counter that was reset to min.
        (None, Some(min)) => (Some(v - min), Some(v)),
        (None, None) => (None, Some(v)),
    }
}

/// graphite-web's `keepLastValue` on one series' values.
fn keep_last_value(values: &mut [Option<f64>], limit: f64) {
    let mut missing = 0usize;
    let mut last = None;
    for i in 0..values.len() {
        match values[i] {
            None => missing += 1,
            Some(v) => {
                if missing > 0 && missing as f64 <= limit {
                    if let Some(last) = last {
                        values[i - missing..i].fill(Some(last));
                    }
                }
                missing = 0;
                last = Some(v);
            }
        }
    }
    if missing > 0 && missing as f64 <= limit {
        if let Some(last) = last {
            let len = values.len();
            values[len - missing..].fill(Some(last));
        }
    }
}

/// graphite-web's `aggKey`: the given nodes of a series' path (of the first
/// path expression in its name if a function named it), or its tag values.
fn node_key(series: &Series, nodes: &[Value]) -> String {
    let path = match series.name.ends_with(')') {
        true => first_path_expression(&series.name).unwrap_or_else(|| series.name.clone()),
        false => series.name.clone(),
    };
    let untagged = path.split(';').next().unwrap_or(&path);
    let parts: Vec<&str> = untagged.split('.').collect();
    let tag = |name: &str| match series.tags.get(name) {
        Some(TagValue::Str(s)) => s.clone(),
        Some(TagValue::Int(i)) => i.to_string(),
        Some(TagValue::Float(x)) => pyfmt::repr(*x),
        None => String::new(),
    };
    let node = |n: i64| {
        let index = if n < 0 { parts.len() as i64 + n } else { n };
        usize::try_from(index)
            .ok()
            .and_then(|i| parts.get(i))
            .map(|p| p.to_string())
    };
    let keys: Vec<String> = nodes
        .iter()
        .map(|n| match n {
            Value::Int(i) => node(*i).unwrap_or_else(|| tag(&i.to_string())),
            Value::Float(x) if x.fract() == 0.0 => node(*x as i64).unwrap_or_else(|| tag(&pyfmt::repr(*x))),
            Value::Float(x) => tag(&pyfmt::repr(*x)),
            Value::Str(s) => tag(s),
            Value::Bool(b) => node(i64::from(*b)).unwrap_or_default(),
            Value::Series(_) | Value::None => String::new(),
        })
        .collect();
    keys.join(".")
}

/// graphite-web's `_getFirstPathExpression`: the path inside the first
/// arguments of the calls a name is made of.
fn first_path_expression(name: &str) -> Option<String> {
    let mut expr = expr::parse(name).ok()?;
    loop {
        match expr {
            Expr::Path(path) => return Some(path),
            Expr::Call(call) => expr = call.args.into_iter().next()?,
            _ => return None,
        }
    }
}

/// `sortByName(natural=True)`'s key: every run of digits as its number,
/// zero-padded to ten digits.
fn natural_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        key.push_str(&rest[..start]);
        let digits = &rest[start..];
        let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
        let number = digits[..end].trim_start_matches('0');
        let number = if number.is_empty() { "0" } else { number };
        key.push_str(&format!("{number:0>10}"));
        rest = &digits[end..];
    }
    key.push_str(rest);
    key
}

/// graphite-web's aggregation functions over a row of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggFunc {
    Average,
    AvgZero,
    Median,
    Sum,
    Min,
    Max,
    Diff,
    StdDev,
    Count,
    Range,
    Multiply,
    Last,
}

impl AggFunc {
    fn parse(name: &str) -> Option<AggFunc> {
        Some(match name {
            "average" | "avg" => AggFunc::Average,
            "avg_zero" => AggFunc::AvgZero,
            "median" => AggFunc::Median,
            "sum" | "total" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "diff" => AggFunc::Diff,
            "stddev" => AggFunc::StdDev,
            "count" => AggFunc::Count,
            "range" | "rangeOf" => AggFunc::Range,
            "multiply" => AggFunc::Multiply,
            "last" | "current" => AggFunc::Last,
            _ => return None,
        })
    }

    /// graphite's `safe*` functions: missing values are left out (but
    /// `avg_zero` counts them as 0 and `multiply` is missing if any is).
    fn apply(self, row: &[Option<f64>]) -> Option<f64> {
        let present: Vec<f64> = row.iter().flatten().copied().collect();
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        if present.is_empty() && !matches!(self, AggFunc::AvgZero | AggFunc::Count) {
            return None;
        }
        match self {
            AggFunc::Average => average(row),
            AggFunc::AvgZero => (!row.is_empty()).then(|| sum(&present) / row.len() as f64),
            AggFunc::Median => {
                let mut sorted = present;
                sorted.sort_by(f64::total_cmp);
                let mid = sorted.len() / 2;
                Some(match sorted.len() % 2 {
                    0 => (sorted[mid - 1] + sorted[mid]) / 2.0,
                    _ => sorted[mid],
                })
            }
            AggFunc::Sum => Some(sum(&present)),
            AggFunc::Min => present.iter().copied().reduce(f64::min),
            AggFunc::Max => present.iter().copied().reduce(f64::max),
            AggFunc::Diff => Some(present[0] - sum(&present[1..])),
            AggFunc::StdDev => {
                let mean = sum(&present) / present.len() as f64;
                let squares: f64 = present.iter().map(|v| (v - mean) * (v - mean)).sum();
                Some((squares / present.len() as f64).sqrt())
            }
            AggFunc::Count => Some(present.len() as f64),
            AggFunc::Range => {
                let max = present.iter().copied().reduce(f64::max)?;
                Some(max - present.iter().copied().reduce(f64::min)?)
            }
            AggFunc::Multiply => match present.len() == row.len() {
                true => Some(present.iter().product()),
                false => None,
            },
            AggFunc::Last => present.last().copied(),
        }
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// graphite-web's `aggregate` (after `normalize`): every series consolidated
/// to the least common multiple of their steps, then combined index by
/// index (not by timestamp, as graphite does), a point missing where no
/// series has one. Named `<func>Series(<path expressions>)`, tagged with
/// the tags all series share and `aggregatedBy`.
fn aggregate(mut b: Bound, func: AggFunc, func_name: &str) -> Result<Vec<Series>, EvalError> {
    let mut series = b.series_lists(0);
    if series.is_empty() {
        return Ok(series);
    }
    let mut step = series[0].step;
    for s in &series {
        step = (step / gcd(step, s.step))
            .checked_mul(s.step)
            .ok_or_else(|| b.error("the series' steps have no common multiple in range"))?;
    }
    for s in &mut series {
        s.consolidate((step / s.step) as usize);
    }
    let start = series.iter().map(|s| s.start).min().unwrap_or(0);
    let mut end = series.iter().map(|s| s.end).max().unwrap_or(start);
    end -= (end - start).rem_euclid(step);
    let mut expressions: Vec<&str> = Vec::new();
    for s in &series {
        if !expressions.contains(&s.path_expression.as_str()) {
            expressions.push(&s.path_expression);
        }
    }
    let name = format!("{func_name}Series({})", expressions.join(","));
    let len = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let mut row = Vec::with_capacity(series.len());
    let values = (0..len)
        .map(|i| {
            row.clear();
            row.extend(series.iter().map(|s| s.values.get(i).copied().flatten()));
            func.apply(&row)
        })
        .collect();
    let mut tags = series[0].tags.clone();
    for s in &series[1..] {
        tags.retain_common(&s.tags);
    }
    if tags.get("name").is_none() {
        tags.set("name", TagValue::Str(name.clone()));
    }
    tags.set("aggregatedBy", TagValue::Str(func_name.to_string()));
    Ok(vec![Series {
        path_expression: name.clone(),
        name,
        tags,
        start,
        end,
        step,
        values,
    }])
}

fn summarize(_: &mut Evaluator<'_, '_>, _: &Call, mut b: Bound) -> Result<Vec<Series>, EvalError> {
    let interval_text = b.text(1)?;
    let func_name = match b.take(2) {
        Some(Value::Str(f)) => f,
        _ => "sum".to_string(),
    };
    let align_to_from = b.optional_bool(3)?.unwrap_or(false);
    let interval = parse_offset(&interval_text).map_err(|e| b.error(e))?;
    if interval <= 0 {
        return Err(b.error("interval must be positive"));
    }
    let func = AggFunc::parse(&func_name).ok_or_else(|| b.error("unknown aggregation function"))?;
    let mut out = Vec::new();
    for mut s in b.series(0) {
        let (new_start, new_end) = match align_to_from {
            true => (s.start, s.end),
            false => {
                let end = (s.end - s.end.rem_euclid(interval)).checked_add(interval);
                (
                    s.start - s.start.rem_euclid(interval),
                    end.ok_or_else(|| b.error("interval out of range"))?,
                )
            }
        };
        if (new_end - new_start) / interval > MAX_SUMMARIZE_POINTS {
            return Err(b.error(format!("more than {MAX_SUMMARIZE_POINTS} points")));
        }
        let (values, aligned_end) = summarize_values(&s, func, interval, new_start, new_end);
        s.tags.set("summarize", TagValue::Str(interval_text.clone()));
        s.tags.set("summarizeFunction", TagValue::Str(func_name.clone()));
        let flag = if align_to_from { ", true" } else { "" };
        s.rename(format!(
            "summarize({}, \"{interval_text}\", \"{func_name}\"{flag})",
            s.name
        ));
        s.start = new_start;
        s.end = if align_to_from { aligned_end } else { new_end };
        s.step = interval;
        s.values = values;
        out.push(s);
    }
    Ok(out)
}

/// graphite-web's `_summarizeValues`: buckets of `interval` from `start`
/// while before `end`; a bucket aggregates its points (and the one at its
/// start); it is missing if none of its points is present.
fn summarize_values(series: &Series, func: AggFunc, interval: i64, start: i64, end: i64) -> (Vec<Option<f64>>, i64) {
    let count = ((series.end - series.start + series.step - 1) / series.step).max(0) as usize;
    let points = count.min(series.values.len());
    let timestamp = |i: usize| series.start + i as i64 * series.step;
    let mut values = Vec::new();
    let mut i = 0;
    let mut bucket = start;
    while bucket < end {
        let mut first = i;
        let mut present = 0;
        while i < points && timestamp(i) < bucket.saturating_add(interval) {
            if timestamp(i) <= bucket {
                first = i;
            }
            if timestamp(i) >= bucket && series.values[i].is_some() {
                present += 1;
            }
            i += 1;
        }
        values.push(if present > 0 {
            func.apply(&series.values[first..i])
        } else {
            None
        });
        bucket += interval;
    }
    (values, bucket)
}

fn moving_average(evaluator: &mut Evaluator<'_, '_>, call: &Call, mut b: Bound) -> Result<Vec<Series>, EvalError> {
    let window = b.take(1).ok_or_else(|| b.error("missing windowSize"))?;
    let xff = b.optional_float(2)?.unwrap_or(0.0);
    let series = b.series(0);
    if series.is_empty() {
        return Ok(series);
    }
    let max_step = series.iter().map(|s| s.step).max().unwrap_or(1);
    let preview = match &window {
        Value::Str(text) => Some(parse_offset(text).map_err(|e| b.error(e))?.abs()),
        // graphite-web's int(): a float is truncated.
        Value::Int(n) if *n >= 0 => max_step.checked_mul(*n),
        Value::Float(x) if *x >= 0.0 => max_step.checked_mul(*x as i64),
        Value::Int(_) | Value::Float(_) => return Err(b.error("windowSize must not be negative")),
        _ => return Err(b.error("windowSize must be a number or an interval")),
    };
    let preview = preview.ok_or_else(|| b.error("windowSize too large"))?;
    // graphite-web evaluates the series again from `preview` earlier, so
    // that the first points have a full window.
    let source = call.args.first().ok_or_else(|| b.error("seriesList must come first"))?;
    let saved = evaluator.from;
    evaluator.from = saved.saturating_sub(preview);
    let again = evaluator.eval(source);
    evaluator.from = saved;
    let Value::Series(again) = again? else {
        return Err(b.error("seriesList is not a series list"));
    };
    let (label, tag) = match &window {
        Value::Str(text) => (format!("\"{text}\""), TagValue::Str(text.clone())),
        Value::Int(n) => (n.to_string(), TagValue::Int(*n)),
        Value::Float(x) => (pyfmt::repr(*x), TagValue::Float(*x)),
        _ => unreachable!("refused above"),
    };
    let mut out = Vec::with_capacity(again.len());
    for mut s in again {
        let points = match &window {
            Value::Str(_) => (preview / s.step).max(0) as usize,
            Value::Int(n) => usize::try_from(*n).unwrap_or(0),
            _ => usize::try_from(preview / series.iter().map(|s| s.step).max().unwrap_or(1)).unwrap_or(0),
        };
        let values = (points + 1..=s.values.len())
            .map(|i| {
                let window = &s.values[i - points..i];
                let present = window.iter().flatten().count();
                let enough = points > 0 && present > 0 && present as f64 / points as f64 >= xff;
                if enough {
                    average(window)
                } else {
                    None
                }
            })
            .collect();
        s.tags.set("movingAverage", tag.clone());
        s.rename(format!("movingAverage({},{label})", s.name));
        s.start += preview;
        s.values = values;
        out.push(s);
    }
    Ok(out)
}

/// The function list of graphite-web's `/functions` (or `None` for an
/// unknown name with `only`): a JSON object of `{name: {name, function,
/// description, module, group, params}}`, or grouped by `group` first.
pub fn functions_json(grouped: bool) -> String {
    let mut root = serde_json::Map::new();
    for def in FUNCTIONS {
        let info = function_info(def);
        if grouped {
            let group = root
                .entry(def.group)
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(group) = group {
                group.insert(def.name.to_string(), info);
            }
        } else {
            root.insert(def.name.to_string(), info);
        }
    }
    finish_json(&serde_json::Value::Object(root))
}

/// One function's description, as graphite-web's `/functions/<name>`.
pub fn function_json(name: &str) -> Option<String> {
    find_function(name).map(|def| finish_json(&function_info(def)))
}

/// A placeholder for an infinite default, which JSON cannot hold: graphite
/// writes it as `1e9999` (its `jsonInfinityEncoder`), which Grafana reads.
const INFINITY_MARK: &str = "\u{1}infinity";

fn finish_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).expect("a JSON value always serializes");
    text.replace(&format!("\"{}\"", INFINITY_MARK.replace('\u{1}', "\\u0001")), "1e9999")
}

fn literal_json(literal: Literal) -> serde_json::Value {
    match literal {
        Literal::Str(s) => s.into(),
        Literal::Int(i) => i.into(),
        Literal::Bool(b) => b.into(),
        Literal::Infinity => INFINITY_MARK.into(),
    }
}

fn function_info(def: &FunctionDef) -> serde_json::Value {
    let params: Vec<serde_json::Value> = def
        .params
        .iter()
        .map(|p| {
            let mut param = serde_json::Map::new();
            param.insert("name".into(), p.name.into());
            param.insert("type".into(), p.kind.name().into());
            if p.required {
                param.insert("required".into(), true.into());
            }
            if let Some(default) = p.default {
                param.insert("default".into(), literal_json(default));
            }
            if p.multiple {
                param.insert("multiple".into(), true.into());
            }
            if p.kind == ParamType::AggFunc {
                param.insert("options".into(), AGG_FUNCS.iter().copied().collect());
            }
            if !p.suggestions.is_empty() {
                let suggestions = p.suggestions.iter().map(|s| literal_json(*s)).collect();
                param.insert("suggestions".into(), serde_json::Value::Array(suggestions));
            }
            serde_json::Value::Object(param)
        })
        .collect();
    serde_json::json!({
        "name": def.name,
        "function": signature(def),
        "description": def.description,
        "module": "graphite.render.functions",
        "group": def.group,
        "params": params,
    })
}

/// The Python signature graphite-web shows: `summarize(seriesList,
/// intervalString, func='sum', alignToFrom=False)`.
fn signature(def: &FunctionDef) -> String {
    let params: Vec<String> = def
        .params
        .iter()
        .map(|p| match (p.multiple, p.required, p.default) {
            (true, _, _) => format!("*{}", p.name),
            (_, true, _) => p.name.to_string(),
            (_, _, Some(Literal::Str(s))) => format!("{}='{s}'", p.name),
            (_, _, Some(Literal::Int(i))) => format!("{}={i}", p.name),
            (_, _, Some(Literal::Bool(b))) => format!("{}={}", p.name, if b { "True" } else { "False" }),
            (_, _, Some(Literal::Infinity)) => format!("{}=inf", p.name),
            (_, false, None) => format!("{}=None", p.name),
        })
        .collect();
    format!("{}({})", def.name, params.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphite::path::PathPattern;

    /// A store of series on their own grids: (key, start, step, values).
    struct Store {
        series: Vec<(&'static str, i64, i64, Vec<Option<f64>>)>,
        /// Every fetch: (path expression, from, until).
        fetches: Vec<(String, i64, i64)>,
    }

    const FROM: i64 = 1000;
    const UNTIL: i64 = 1600;

    fn store() -> Store {
        Store {
            series: vec![
                ("a.b", 1000, 60, vec![Some(1.0), None, Some(3.0), Some(4.0)]),
                ("a.c", 1000, 60, vec![Some(10.0), Some(20.0), None, Some(40.0)]),
                ("x.slow", 1000, 120, vec![Some(5.0), Some(7.0)]),
                ("cpu;dc=x;host=a", 1000, 60, vec![Some(1.0), Some(2.0)]),
                ("cpu;dc=x;host=b", 1000, 60, vec![Some(3.0), None]),
                ("srv.web10.cpu", 1000, 60, vec![Some(5.0), Some(-1.0)]),
                ("srv.web9.cpu", 1000, 60, vec![Some(2.0), None]),
                ("srv.web1.cpu", 1000, 60, vec![Some(9.0), Some(1.0)]),
            ],
            fetches: Vec::new(),
        }
    }

    impl Store {
        fn eval(&mut self, target: &str) -> Result<Vec<Series>, EvalError> {
            let expr = expr::parse(target).expect("test targets parse");
            let series = &self.series;
            let fetches = &mut self.fetches;
            let mut fetch = |path: &str, from: i64, until: i64| {
                fetches.push((path.to_string(), from, until));
                let pattern = PathPattern::parse(path).map_err(|e| e.to_string())?;
                Ok(series
                    .iter()
                    .filter(|(key, ..)| pattern.matches(key))
                    .map(|(key, start, step, values)| Series::fetched(key, path, *start, *step, values.clone()))
                    .collect())
            };
            evaluate(&expr, FROM, UNTIL, &mut fetch)
        }
    }

    fn eval(target: &str) -> Result<Vec<Series>, EvalError> {
        store().eval(target)
    }

    fn names(series: &[Series]) -> Vec<&str> {
        series.iter().map(|s| s.name.as_str()).collect()
    }

    fn one(target: &str) -> Series {
        let mut series = eval(target).unwrap();
        assert_eq!(series.len(), 1, "{target}");
        series.remove(0)
    }

    fn tag(series: &Series, name: &str) -> Option<TagValue> {
        series.tags.get(name).cloned()
    }

    fn s(text: &str) -> Option<TagValue> {
        Some(TagValue::Str(text.into()))
    }

    #[test]
    fn paths_fetch_sorted_by_name() {
        let series = eval("srv.*.cpu").unwrap();
        assert_eq!(names(&series), ["srv.web1.cpu", "srv.web10.cpu", "srv.web9.cpu"]);
        assert_eq!(series[0].path_expression, "srv.*.cpu");
        assert_eq!(eval("nothing.here").unwrap(), vec![]);
    }

    #[test]
    fn grafanas_wrapped_queries() {
        let wrapped = one(r#"aliasSub(a.b, "(^.*$)", "\1 A")"#);
        assert_eq!(wrapped.name, "a.b A");
        assert_eq!(wrapped.path_expression, "a.b");
        assert_eq!(tag(&wrapped, "name"), s("a.b"));
        let line = one(r#"aliasSub(constantLine(100), "(^.*$)", "\1 A")"#);
        assert_eq!(line.name, "100.0 A");
        assert_eq!(line.path_expression, "constantLine(100.0)");
        assert_eq!((line.start, line.end, line.step), (FROM, UNTIL, 300));
        assert_eq!(line.values, vec![Some(100.0); 3]);
        let points: Vec<_> = line.datapoints().collect();
        assert_eq!(
            points,
            vec![(Some(100.0), 1000), (Some(100.0), 1300), (Some(100.0), 1600)]
        );
        let sum = one(r#"aliasSub(sumSeries(a.*), "(^.*$)", "\1 B")"#);
        assert_eq!(sum.name, "sumSeries(a.*) B");
    }

    #[test]
    fn aggregates_skip_missing_points_and_name_by_path_expression() {
        let sum = one("sumSeries(a.*)");
        assert_eq!(sum.name, "sumSeries(a.*)");
        assert_eq!(sum.values, vec![Some(11.0), Some(20.0), Some(3.0), Some(44.0)]);
        assert_eq!(tag(&sum, "name"), s("sumSeries(a.*)"));
        assert_eq!(tag(&sum, "aggregatedBy"), s("sum"));
        assert_eq!(one("sum(a.*)").values, sum.values);
        assert_eq!(
            one("averageSeries(a.*)").values,
            vec![Some(5.5), Some(20.0), Some(3.0), Some(22.0)]
        );
        assert_eq!(one("avg(a.*)").name, "averageSeries(a.*)");
        assert_eq!(
            one("minSeries(a.*)").values,
            vec![Some(1.0), Some(20.0), Some(3.0), Some(4.0)]
        );
        assert_eq!(
            one("maxSeries(a.*)").values,
            vec![Some(10.0), Some(20.0), Some(3.0), Some(40.0)]
        );
        // Several lists, a repeated path expression named once.
        assert_eq!(one("sumSeries(a.b, a.c, a.b)").name, "sumSeries(a.b,a.c)");
        // Nothing to sum is no series.
        assert_eq!(eval("sumSeries(nothing)").unwrap(), vec![]);
    }

    #[test]
    fn aggregates_keep_common_tags() {
        // A tagged path names one series (its canonical key).
        assert_eq!(one("cpu;host=a;dc=x").name, "cpu;dc=x;host=a");
        let sum = one("sumSeries(cpu;host=a;dc=x, cpu;dc=x;host=b)");
        assert_eq!(
            sum.tags.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            ["dc", "name", "aggregatedBy"]
        );
        assert_eq!(tag(&sum, "name"), s("cpu"));
        assert_eq!(sum.values, vec![Some(4.0), Some(2.0)]);
    }

    #[test]
    fn aggregates_consolidate_to_the_common_step() {
        let sum = one("sumSeries(a.b, x.slow)");
        assert_eq!(sum.step, 120);
        // a.b averaged in pairs: (1) and (3+4)/2; x.slow as is.
        assert_eq!(sum.values, vec![Some(6.0), Some(10.5)]);
        assert_eq!((sum.start, sum.end), (1000, 1240));
    }

    #[test]
    fn group_concatenates() {
        assert_eq!(names(&eval("group(a.c, x.*, a.b)").unwrap()), ["a.c", "x.slow", "a.b"]);
        assert_eq!(eval("group()").unwrap(), vec![]);
    }

    #[test]
    fn transforms_rename_and_tag() {
        let scaled = one("scale(a.b, 2)");
        assert_eq!(scaled.name, "scale(a.b,2)");
        assert_eq!(scaled.path_expression, "scale(a.b,2)");
        assert_eq!(scaled.values, vec![Some(2.0), None, Some(6.0), Some(8.0)]);
        assert_eq!(tag(&scaled, "scale"), Some(TagValue::Float(2.0)));
        assert_eq!(one("scale(a.b, 0.5)").name, "scale(a.b,0.5)");
        let offset = one("offset(a.b, -1.5)");
        assert_eq!(offset.name, "offset(a.b,-1.5)");
        assert_eq!(offset.values, vec![Some(-0.5), None, Some(1.5), Some(2.5)]);
        let absolute = one("absolute(srv.web10.cpu)");
        assert_eq!(absolute.name, "absolute(srv.web10.cpu)");
        assert_eq!(absolute.values, vec![Some(5.0), Some(1.0)]);
        assert_eq!(tag(&absolute, "absolute"), Some(TagValue::Int(1)));
        // Renamed series aggregate under their new names.
        assert_eq!(
            one("sumSeries(scale(a.*, 2))").name,
            "sumSeries(scale(a.b,2),scale(a.c,2))"
        );
    }

    #[test]
    fn aliases() {
        assert_eq!(names(&eval("alias(a.*, 'x')").unwrap()), ["x", "x"]);
        assert_eq!(one("alias(a.b, 'x')").path_expression, "a.b");
        assert_eq!(
            names(&eval("aliasByNode(srv.*.cpu, 1)").unwrap()),
            ["web1", "web10", "web9"]
        );
        assert_eq!(one("aliasByNode(srv.web1.cpu, 0, -1)").name, "srv.cpu");
        assert_eq!(one("aliasByNode(srv.web1.cpu, 7)").name, "");
        assert_eq!(one("aliasByNode(scale(srv.web1.cpu, 2), 1)").name, "web1");
        assert_eq!(one("aliasByNode(sumSeries(srv.web1.*), 2)").name, "*");
        assert_eq!(
            names(&eval("aliasByNode(group(cpu;dc=x;host=a, cpu;dc=x;host=b), 'host', 0)").unwrap()),
            ["a.cpu", "b.cpu"]
        );
        assert_eq!(
            names(&eval(r"aliasSub(srv.*.cpu, 'web(\d+)', 'w\1')").unwrap()),
            ["srv.w1.cpu", "srv.w10.cpu", "srv.w9.cpu"]
        );
    }

    #[test]
    fn derivatives() {
        let d = one("derivative(a.c)");
        assert_eq!(d.name, "derivative(a.c)");
        assert_eq!(d.values, vec![None, Some(10.0), None, None]);
        let counter = |values: Vec<Option<f64>>, target: &str| {
            let mut store = store();
            store.series = vec![("n", 0, 10, values)];
            store.eval(target).unwrap().remove(0)
        };
        let values = vec![Some(5.0), Some(8.0), Some(2.0), None, Some(4.0), Some(1.0)];
        let nn = counter(values.clone(), "nonNegativeDerivative(n)");
        assert_eq!(nn.name, "nonNegativeDerivative(n)");
        assert_eq!(nn.values, vec![None, Some(3.0), None, None, None, None]);
        let wrapped = counter(values.clone(), "nonNegativeDerivative(n, 9)");
        // 8 → 2 wraps at 9: 9 + 1 + 2 - 8; after the gap 4 is a first reading.
        assert_eq!(wrapped.values, vec![None, Some(3.0), Some(4.0), None, None, Some(7.0)]);
        let reset = counter(values.clone(), "nonNegativeDerivative(n, minValue=0)");
        assert_eq!(reset.values, vec![None, Some(3.0), Some(2.0), None, None, Some(1.0)]);
        let capped = counter(values.clone(), "nonNegativeDerivative(n, 6)");
        // 8 is above the maximum: skipped, and the next reading is a first one.
        assert_eq!(capped.values, vec![None, None, None, None, None, Some(4.0)]);
        let rate = counter(vec![Some(0.0), Some(1.0), Some(3.0)], "perSecond(n)");
        assert_eq!(rate.name, "perSecond(n)");
        assert_eq!(rate.values, vec![None, Some(0.1), Some(0.2)]);
        let thirds = counter(vec![Some(0.0), Some(1.0)], "perSecond(scale(n, 0.3333333))");
        assert_eq!(thirds.values, vec![None, Some(0.033333)]);
    }

    #[test]
    fn summarize_aligns_to_the_interval_or_the_start() {
        let mut store = store();
        // Points at 90, 150, 210, 270, 330 (step 60).
        store.series = vec![("m", 90, 60, vec![Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)])];
        let out = store.eval("summarize(m, '2min')").unwrap().remove(0);
        assert_eq!(out.name, "summarize(m, \"2min\", \"sum\")");
        assert_eq!((out.start, out.step, out.end), (0, 120, 480));
        // Buckets [0,120): 90; [120,240): 150, 210; [240,360): 270, 330; [360,480): none.
        assert_eq!(out.values, vec![Some(1.0), Some(2.0), Some(9.0), None]);
        assert_eq!(tag(&out, "summarize"), s("2min"));
        assert_eq!(tag(&out, "summarizeFunction"), s("sum"));
        let max = store.eval("summarize(m, '2min', 'max')").unwrap().remove(0);
        assert_eq!(max.values, vec![Some(1.0), Some(2.0), Some(5.0), None]);
        let aligned = store.eval("summarize(m, '2min', 'last', true)").unwrap().remove(0);
        assert_eq!(aligned.name, "summarize(m, \"2min\", \"last\", true)");
        assert_eq!((aligned.start, aligned.end), (90, 450));
        // Buckets from 90: [90,210): 90, 150; [210,330): 210, 270; [330,450): 330.
        assert_eq!(aligned.values, vec![Some(2.0), Some(4.0), Some(5.0)]);
        let avg = store
            .eval("summarize(m, '2min', func='avg', alignToFrom=True)")
            .unwrap()
            .remove(0);
        assert_eq!(avg.values, vec![Some(1.5), Some(4.0), Some(5.0)]);
    }

    #[test]
    fn summarize_refuses_bad_intervals() {
        let reason = |target: &str| eval(target).unwrap_err().to_string();
        assert_eq!(
            reason("summarize(a.b, '1x')"),
            "summarize: invalid interval value for parameter intervalString"
        );
        assert_eq!(reason("summarize(a.b, '-1h')"), "summarize: interval must be positive");
        assert_eq!(reason("summarize(a.b, '0s')"), "summarize: interval must be positive");
        assert_eq!(
            reason("summarize(a.b, '1h', 'sumSeries')"),
            "summarize: invalid option for parameter func: 'sumSeries'"
        );
    }

    #[test]
    fn summarize_is_bounded() {
        let mut store = store();
        store.series = vec![("wide", 0, 3600, vec![None; 20_000])];
        let error = store.eval("summarize(wide, '1s')").unwrap_err();
        assert_eq!(error.to_string(), "summarize: more than 1000000 points");
        assert_eq!(store.eval("summarize(wide, '1h')").unwrap()[0].values.len(), 20_001);
    }

    #[test]
    fn moving_average_fetches_a_window_earlier() {
        let mut store = store();
        store.series = vec![("m", 880, 60, vec![Some(1.0), Some(3.0), None, Some(5.0), Some(7.0)])];
        let out = store.eval("movingAverage(m, 2)").unwrap().remove(0);
        assert_eq!(out.name, "movingAverage(m,2)");
        assert_eq!(
            store.fetches,
            vec![("m".to_string(), FROM, UNTIL), ("m".to_string(), FROM - 120, UNTIL)]
        );
        assert_eq!(out.start, 880 + 120);
        assert_eq!(out.values, vec![Some(3.0), Some(5.0), Some(6.0)]);
        assert_eq!(tag(&out, "movingAverage"), Some(TagValue::Int(2)));
        let timed = store.eval("movingAverage(m, '3min')").unwrap().remove(0);
        assert_eq!(timed.name, "movingAverage(m,\"3min\")");
        assert_eq!(timed.start, 880 + 180);
        assert_eq!(timed.values, vec![Some(4.0), Some(6.0)]);
        let strict = store.eval("movingAverage(m, 2, 1)").unwrap().remove(0);
        assert_eq!(strict.values, vec![None, None, Some(6.0)]);
    }

    #[test]
    fn keep_last_value_fills_short_gaps() {
        let mut store = store();
        store.series = vec![(
            "g",
            0,
            1,
            vec![None, Some(1.0), None, None, Some(2.0), None, None, None],
        )];
        let all = store.eval("keepLastValue(g)").unwrap().remove(0);
        assert_eq!(all.name, "keepLastValue(g)");
        assert_eq!(
            all.values,
            [None]
                .into_iter()
                .chain([Some(1.0); 3])
                .chain([Some(2.0); 4])
                .collect::<Vec<_>>()
        );
        let two = store.eval("keepLastValue(g, 2)").unwrap().remove(0);
        assert_eq!(
            two.values,
            vec![None, Some(1.0), Some(1.0), Some(1.0), Some(2.0), None, None, None]
        );
    }

    #[test]
    fn filters_and_sorting() {
        assert_eq!(
            names(&eval("highestCurrent(srv.*.cpu, 2)").unwrap()),
            ["srv.web9.cpu", "srv.web1.cpu"]
        );
        assert_eq!(
            names(&eval("limit(srv.*.cpu, 2)").unwrap()),
            ["srv.web1.cpu", "srv.web10.cpu"]
        );
        assert_eq!(
            names(&eval("limit(srv.*.cpu, -1)").unwrap()),
            ["srv.web1.cpu", "srv.web10.cpu"]
        );
        assert_eq!(names(&eval("limit(srv.*.cpu, 0)").unwrap()), Vec::<&str>::new());
        assert_eq!(
            names(&eval("sortByName(srv.*.cpu, true)").unwrap()),
            ["srv.web1.cpu", "srv.web9.cpu", "srv.web10.cpu"]
        );
        assert_eq!(
            names(&eval("sortByName(srv.*.cpu, reverse=true)").unwrap()),
            ["srv.web9.cpu", "srv.web10.cpu", "srv.web1.cpu"]
        );
        assert_eq!(natural_key("a007b12345678901c"), "a0000000007b12345678901c");
    }

    #[test]
    fn argument_errors_are_one_line_reasons() {
        let reason = |target: &str| {
            eval(target)
                .map(|s| format!("{target} gave {s:?}"))
                .unwrap_or_else(|e| e.to_string())
        };
        assert_eq!(reason("nosuch(a.b)"), "unknown function nosuch");
        assert_eq!(reason("scale(a.b)"), "scale: missing required parameter factor");
        assert_eq!(reason("scale(a.b, 1, 2)"), "scale: too many parameters");
        assert_eq!(
            reason("scale(a.b, 'x')"),
            "scale: invalid float value for parameter factor"
        );
        assert_eq!(
            reason("scale(1, 2)"),
            "scale: invalid seriesList value for parameter seriesList"
        );
        assert_eq!(reason("scale(a.b, factor=2, nope=1)"), "scale: too many parameters");
        assert_eq!(
            reason("nonNegativeDerivative(a.b, nope=1)"),
            "nonNegativeDerivative: unexpected keyword arguments: nope"
        );
        assert_eq!(
            reason("limit(a.b, 1.5)"),
            "limit: invalid integer value for parameter n"
        );
        assert_eq!(
            reason("sumSeries()"),
            "sumSeries: missing required parameter seriesLists"
        );
        assert_eq!(
            reason("constantLine()"),
            "constantLine: missing required parameter value"
        );
        assert_eq!(
            reason("aliasSub(a.b, '(', 'x')"),
            "aliasSub: invalid regular expression: found open group without closing ')'"
        );
        assert_eq!(
            reason("aliasSub(a.b, '(a)', '\\2')"),
            "aliasSub: invalid replacement: invalid group reference"
        );
        assert_eq!(reason("alias(a.b, 1)"), "alias: expected a string");
        assert_eq!(
            reason("sortByName(a.b, 'maybe')"),
            "sortByName: invalid boolean value for parameter natural"
        );
        assert_eq!(
            reason("movingAverage(a.b, true)"),
            "movingAverage: windowSize must be a number or an interval"
        );
        // A number at the top is a path, as in graphite-web's grammar.
        assert_eq!(reason("5"), "5 gave []");
        let mut fetch = |_: &str, _: i64, _: i64| Ok(Vec::new());
        assert_eq!(evaluate(&Expr::Int(5), 0, 1, &mut fetch), Err(EvalError::NotSeries));
    }

    #[test]
    fn keyword_and_converted_arguments() {
        assert_eq!(one("scale(seriesList=a.b, factor=2)").name, "scale(a.b,2)");
        assert_eq!(one("scale(a.b, '2')").name, "scale(a.b,2)");
        assert_eq!(one("limit(a.b, '1')").name, "a.b");
        assert_eq!(one("constantLine(1.5)").name, "1.5");
        assert_eq!(one("keepLastValue(a.b, inf)").name, "keepLastValue(a.b)");
        assert_eq!(one("sortByName(a.b, natural=1)").name, "a.b");
    }

    #[test]
    fn fetch_errors_pass_through() {
        let expr = expr::parse("sumSeries(a.b)").unwrap();
        let mut failing = |_: &str, _: i64, _: i64| Err("store unavailable".to_string());
        assert_eq!(
            evaluate(&expr, 0, 1, &mut failing),
            Err(EvalError::Fetch("store unavailable".into()))
        );
    }

    #[test]
    fn functions_are_described_as_graphite_web_does() {
        // serde_json reads no 1e9999 (JavaScript reads it as Infinity).
        let parse =
            |text: String| -> serde_json::Value { serde_json::from_str(&text.replace("1e9999", "\"inf\"")).unwrap() };
        let all = parse(functions_json(false));
        for def in FUNCTIONS {
            assert_eq!(all[def.name]["name"], def.name);
            assert_eq!(all[def.name]["module"], "graphite.render.functions");
        }
        assert_eq!(all.as_object().unwrap().len(), FUNCTIONS.len());
        let summarize = &all["summarize"];
        assert_eq!(
            summarize["function"],
            "summarize(seriesList, intervalString, func='sum', alignToFrom=False)"
        );
        assert_eq!(summarize["group"], "Transform");
        assert_eq!(
            summarize["params"][1],
            serde_json::json!({"name": "intervalString", "type": "interval", "required": true, "suggestions": ["10min", "1h", "1d"]})
        );
        assert_eq!(
            summarize["params"][2]["options"].as_array().unwrap().len(),
            AGG_FUNCS.len()
        );
        assert_eq!(all["sumSeries"]["function"], "sumSeries(*seriesLists)");
        assert_eq!(
            all["sumSeries"]["params"][0],
            serde_json::json!({"name": "seriesLists", "type": "seriesList", "required": true, "multiple": true})
        );
        assert_eq!(
            all["nonNegativeDerivative"]["function"],
            "nonNegativeDerivative(seriesList, maxValue=None, minValue=None)"
        );
        let keep = functions_json(false);
        assert!(
            keep.contains(r#"{"default":1e9999,"name":"limit","type":"intOrInf"}"#),
            "{keep}"
        );
        assert_eq!(all["keepLastValue"]["function"], "keepLastValue(seriesList, limit=inf)");
        let grouped = parse(functions_json(true));
        assert_eq!(grouped["Alias"]["aliasSub"]["name"], "aliasSub");
        assert_eq!(grouped["Combine"].as_object().unwrap().len(), 7);
        let one = parse(function_json("alias").unwrap());
        assert_eq!(one["function"], "alias(seriesList, newName)");
        assert_eq!(function_json("nosuch"), None);
    }

    #[test]
    fn hostile_numbers_are_refused_not_overflowed() {
        let reason = |target: &str| eval(target).unwrap_err().to_string();
        assert_eq!(
            reason("movingAverage(a.b, -1)"),
            "movingAverage: windowSize must not be negative"
        );
        assert_eq!(
            reason("movingAverage(a.b, 9223372036854775807)"),
            "movingAverage: windowSize too large"
        );
        assert_eq!(
            reason("movingAverage(a.b, 1e300)"),
            "movingAverage: windowSize too large"
        );
        assert_eq!(one("movingAverage(a.b, 0)").values, vec![None; 4]);
        assert_eq!(
            reason("summarize(a.b, '999999999999y')"),
            "summarize: invalid interval value for parameter intervalString"
        );
        assert_eq!(one("summarize(a.b, '9223372036854775807s')").values, vec![Some(8.0)]);
        let mut store = store();
        // Two primes near 4e9: their product is beyond i64.
        store.series = vec![
            ("p", 0, 4_000_000_007, vec![Some(1.0)]),
            ("q", 0, 4_000_000_009, vec![Some(1.0)]),
        ];
        assert_eq!(
            store.eval("sumSeries(p, q)").unwrap_err().to_string(),
            "sumSeries: the series' steps have no common multiple in range"
        );
        store.series = vec![("z", 0, 0, vec![Some(1.0)])];
        assert_eq!(
            store.eval("z").unwrap_err().to_string(),
            "z: a series with a step below 1 s"
        );
    }

    use proptest::prelude::*;

    /// Targets built from the supported functions (and an unknown one) with
    /// arguments of every kind, including extreme numbers and odd strings.
    fn target() -> impl Strategy<Value = String> {
        let path = prop_oneof![
            Just("a.*".to_string()),
            Just("a.b".to_string()),
            Just("x.slow".to_string()),
            Just("srv.*.cpu".to_string()),
            Just("cpu;host=a;dc=x".to_string()),
            Just("none.such".to_string()),
        ];
        let literal = prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            (-3i64..12).prop_map(|i| i.to_string()),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(|x| format!("{x:?}")),
            prop::sample::select(vec![
                "'1min'",
                "'2h'",
                "'-1h'",
                "'0s'",
                "'1s'",
                "'x'",
                "'sum'",
                "'max'",
                "'(^.*$)'",
                "'\\1 A'",
                "'('",
                "\"\\g<0>\"",
                "true",
                "false",
                "none",
                "inf",
                "'5min'",
                "'host'",
            ])
            .prop_map(str::to_string),
        ];
        let names: Vec<&'static str> = FUNCTIONS.iter().map(|f| f.name).chain(["nosuch"]).collect();
        path.prop_recursive(3, 24, 4, move |inner| {
            (
                prop::sample::select(names.clone()),
                prop::collection::vec(prop_oneof![inner, literal.clone()], 0..4),
            )
                .prop_map(|(name, args)| format!("{name}({})", args.join(", ")))
        })
    }

    proptest! {
        /// Whatever a target asks, evaluating it answers or refuses: no
        /// panic, no overflow, and every series it answers is on a grid.
        #[test]
        fn any_target_evaluates_or_is_refused(target in target()) {
            if let Ok(series) = eval(&target) {
                for s in series {
                    prop_assert!(s.step >= 1, "{target}: step {}", s.step);
                }
            }
        }
    }
}
