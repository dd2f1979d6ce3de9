//! Gathering every error of one `#[task]` so that a single compile reports them all.

/// Errors gathered so that one compile reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Add an error.
    pub fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    /// The combined error, if any was pushed.
    pub fn into_inner(self) -> Option<syn::Error> {
        self.0
    }
}
