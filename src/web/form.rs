//! Form controls bound to API fields, with typed attributes: each control carries the field
//! path the API names in its `fields` errors (`data-field`, `data-error-for`), so a page script
//! can put the server's messages next to the right input without knowing the form.
//!
//! Every value goes through maud, which escapes it; nothing here inserts raw markup.

use maud::{Markup, Render, html};

/// The id of the element showing errors for `field` (`settings.persona.name` →
/// `err-settings-persona-name`).
pub fn error_id(field: &str) -> String {
    let slug: String = field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("err-{slug}")
}

/// The id of the control bound to `field` (`limits.memory_mb` → `f-limits-memory_mb`).
fn control_id(field: &str) -> String {
    format!("f-{}", field.replace('.', "-"))
}

/// The (hidden until filled) slot for the messages about `field`.
pub struct ErrorSlot<'a>(pub &'a str);

impl Render for ErrorSlot<'_> {
    fn render(&self) -> Markup {
        html! { p.field-error id=(error_id(self.0)) data-error-for=(self.0) hidden {} }
    }
}

/// The `type` of an [`Input`], with the attributes that only make sense for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputKind {
    /// `type="text"`.
    Text,
    /// `type="url"`.
    Url,
    /// `type="number"` with optional bounds and step.
    Number {
        /// Lowest accepted value (`min`), checked by the browser before the server does.
        min: Option<f64>,
        /// Highest accepted value (`max`).
        max: Option<f64>,
        /// `step` (browsers assume 1).
        step: Option<f64>,
    },
}

impl InputKind {
    /// A whole number of at least `min`.
    pub const fn at_least(min: f64) -> Self {
        InputKind::Number {
            min: Some(min),
            max: None,
            step: None,
        }
    }

    /// A TCP/UDP port number.
    pub const PORT: InputKind = InputKind::Number {
        min: Some(1.0),
        max: Some(65535.0),
        step: None,
    };

    fn type_attr(self) -> &'static str {
        match self {
            InputKind::Text => "text",
            InputKind::Url => "url",
            InputKind::Number { .. } => "number",
        }
    }
}

/// A labelled `<input>` bound to the API field `field`, with its help text and error slot.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    field: &'a str,
    label: &'a str,
    kind: InputKind,
    help: Option<Markup>,
    required: bool,
    /// `autocomplete="off"` (ids, names and images are not personal data to remember).
    no_autocomplete: bool,
    /// `spellcheck="false"` (identifiers).
    no_spellcheck: bool,
    /// `autocapitalize="none"` (lowercase identifiers on phones).
    no_autocapitalize: bool,
    placeholder: Option<&'a str>,
    /// `list` and the `<datalist>` options it suggests.
    suggestions: Option<(&'a str, Vec<Suggestion<'a>>)>,
}

/// One `<option>` of an input's `<datalist>`, with the secret it implies, if any.
#[derive(Debug, Clone)]
pub struct Suggestion<'a> {
    /// What choosing it puts in the input.
    pub value: &'a str,
    /// `data-secret`: the secret the value needs (a provider's API key), for the page script.
    pub secret: Option<String>,
}

impl<'a> Input<'a> {
    /// An input of `kind` for `field`, labelled `label`.
    pub fn new(field: &'a str, label: &'a str, kind: InputKind) -> Self {
        Self {
            field,
            label,
            kind,
            help: None,
            required: false,
            no_autocomplete: false,
            no_spellcheck: false,
            no_autocapitalize: false,
            placeholder: None,
            suggestions: None,
        }
    }

    /// A text input.
    pub fn text(field: &'a str, label: &'a str) -> Self {
        Self::new(field, label, InputKind::Text)
    }

    /// Help shown under the input (and read with it: `aria-describedby`).
    pub fn help(self, help: &str) -> Self {
        self.help_markup(html! { (help) })
    }

    /// Help with markup of its own (`<code>`...), built with maud.
    pub fn help_markup(mut self, help: Markup) -> Self {
        self.help = Some(help);
        self
    }

    /// Marks the input `required`.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// `autocomplete="off"`.
    pub fn no_autocomplete(mut self) -> Self {
        self.no_autocomplete = true;
        self
    }

    /// `spellcheck="false"`, for identifiers.
    pub fn no_spellcheck(mut self) -> Self {
        self.no_spellcheck = true;
        self
    }

    /// `autocapitalize="none"`, for lowercase identifiers.
    pub fn no_autocapitalize(mut self) -> Self {
        self.no_autocapitalize = true;
        self
    }

    /// Placeholder text.
    pub fn placeholder(mut self, text: &'a str) -> Self {
        self.placeholder = Some(text);
        self
    }

    /// Suggested values, as a `<datalist>` with id `list_id` (any other value may be typed).
    pub fn suggestions(mut self, list_id: &'a str, options: Vec<Suggestion<'a>>) -> Self {
        self.suggestions = Some((list_id, options));
        self
    }

    /// The `id` the input gets.
    pub fn id(&self) -> String {
        control_id(self.field)
    }
}

/// `aria-describedby` of a control: its help (if any), then its error slot.
fn described_by(id: &str, has_help: bool, field: &str) -> String {
    if has_help {
        format!("{id}-help {}", error_id(field))
    } else {
        error_id(field)
    }
}

impl Render for Input<'_> {
    fn render(&self) -> Markup {
        let id = self.id();
        let (min, max, step) = match self.kind {
            InputKind::Number { min, max, step } => (min, max, step),
            _ => (None, None, None),
        };
        html! {
            div.field {
                label for=(id) { (self.label) }
                input type=(self.kind.type_attr()) id=(id) name=(self.field)
                    data-field=(self.field)
                    list=[self.suggestions.as_ref().map(|(list, _)| *list)]
                    aria-describedby=(described_by(&id, self.help.is_some(), self.field))
                    required[self.required]
                    autocomplete=[self.no_autocomplete.then_some("off")]
                    spellcheck=[self.no_spellcheck.then_some("false")]
                    autocapitalize=[self.no_autocapitalize.then_some("none")]
                    placeholder=[self.placeholder]
                    min=[min] max=[max] step=[step];
                @if let Some((list, options)) = &self.suggestions {
                    datalist id=(list) {
                        @for o in options {
                            option value=(o.value) data-secret=[o.secret.as_deref()] {}
                        }
                    }
                }
                @if let Some(help) = &self.help {
                    p.help id={ (id) "-help" } { (help) }
                }
                (ErrorSlot(self.field))
            }
        }
    }
}

/// A labelled `<textarea>` bound to the API field `field`: one item per line.
#[derive(Debug, Clone)]
pub struct Textarea<'a> {
    /// The API field.
    pub field: &'a str,
    /// Label text.
    pub label: &'a str,
    /// Visible lines.
    pub rows: u32,
    /// Example input shown while empty.
    pub placeholder: &'a str,
    /// Help shown under it.
    pub help: &'a str,
}

impl Render for Textarea<'_> {
    fn render(&self) -> Markup {
        let id = control_id(self.field);
        html! {
            div.field {
                label for=(id) { (self.label) }
                textarea id=(id) name=(self.field) data-field=(self.field) rows=(self.rows)
                    placeholder=[(!self.placeholder.is_empty()).then_some(self.placeholder)]
                    spellcheck="false"
                    aria-describedby=(described_by(&id, true, self.field)) {}
                p.help id={ (id) "-help" } { (self.help) }
                (ErrorSlot(self.field))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_ids_are_valid_html_ids() {
        assert_eq!(
            error_id("settings.persona.name"),
            "err-settings-persona-name"
        );
        assert_eq!(error_id("ports[0].host"), "err-ports-0--host");
    }

    #[test]
    fn input_attributes_are_typed_and_escaped() {
        let html = Input::new("limits.cpus", "CPU <limit>", InputKind::at_least(0.0))
            .help("a \"quoted\" help")
            .placeholder("x\" onfocus=\"alert(1)")
            .render()
            .into_string();
        assert!(html.contains(r#"<label for="f-limits-cpus">CPU &lt;limit&gt;</label>"#));
        assert!(html.contains(r#"type="number""#) && html.contains(r#"min="0""#));
        assert!(!html.contains("max="), "absent bounds are left out: {html}");
        assert!(html.contains(r#"placeholder="x&quot; onfocus=&quot;alert(1)""#));
        assert!(!html.contains(r#"" onfocus"#));
        assert!(html.contains(r#"aria-describedby="f-limits-cpus-help err-limits-cpus""#));
        assert!(
            html.contains(
                r#"<p class="help" id="f-limits-cpus-help">a &quot;quoted&quot; help</p>"#
            )
        );
        assert!(!html.contains("required"));
    }

    #[test]
    fn boolean_and_optional_attributes_appear_only_when_set() {
        let html = Input::text("id", "Id")
            .required()
            .no_autocomplete()
            .no_spellcheck()
            .no_autocapitalize()
            .render()
            .into_string();
        for attr in [
            "required",
            r#"autocomplete="off""#,
            r#"spellcheck="false""#,
            r#"autocapitalize="none""#,
            r#"aria-describedby="err-id""#,
            r#"<p class="field-error" id="err-id" data-error-for="id" hidden></p>"#,
        ] {
            assert!(html.contains(attr), "{attr} missing: {html}");
        }
        let port = Input::new("p", "P", InputKind::PORT).render().into_string();
        assert!(port.contains(r#"min="1" max="65535""#), "{port}");
    }
}
