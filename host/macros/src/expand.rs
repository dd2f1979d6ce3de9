//! The code `#[task]` writes: the renamed function, its definition and registration, the runner
//! that calls it from stored JSON, and the per-task type and value.

mod runner;
mod task_type;

use crate::options::Options;
use crate::signature::{self, Param, TaskFn};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::ext::IdentExt;
use syn::{Attribute, Ident, Item, ItemFn};

/// Expand `#[task(attr)] item`. On error the item is passed through unchanged next to the
/// errors, so that the errors are all the compiler reports.
pub(crate) fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(function)) => function,
        Ok(other) => {
            let err = syn::Error::new_spanned(
                other,
                "#[task] goes on a free `fn` or `async fn` defined at module level",
            );
            return with_item(err, item);
        }
        Err(err) => return with_item(err, item),
    };
    let (options, option_errors) = Options::parse(attr);
    let analyzed = signature::analyze(&function, options.takes_context);
    let err = match (analyzed, option_errors) {
        (Ok(analyzed), None) => return Expansion::new(&options, &function, &analyzed).emit(),
        (Ok(_), Some(err)) => err,
        (Err(mut err), option_errors) => {
            if let Some(option_errors) = option_errors {
                err.combine(option_errors);
            }
            err
        }
    };
    with_item(err, echoed(function))
}

/// The function as written, minus what the compiler would report again after our error.
fn echoed(mut function: ItemFn) -> TokenStream {
    if function.sig.variadic.take().is_some() {
        // `fn f(a: i32, ...)`: drop the comma left behind.
        let inputs = std::mem::take(&mut function.sig.inputs);
        function.sig.inputs = inputs.into_iter().collect();
    }
    function.into_token_stream()
}

/// The errors, followed by the item as written, its lints silenced: only the errors matter.
fn with_item(err: syn::Error, item: TokenStream) -> TokenStream {
    let errors = err.to_compile_error();
    quote! {
        #errors
        #[allow(unused)]
        #item
    }
}

/// Everything the generated items refer to, named once.
struct Expansion<'a> {
    options: &'a Options,
    function: &'a ItemFn,
    analyzed: &'a TaskFn,
    /// The task's name (the function name, without `r#`).
    name: String,
    /// The task's type and value: the function's own identifier.
    ident: &'a Ident,
    /// The function, renamed.
    fn_ident: Ident,
    /// The `TaskDefinition` static.
    def_ident: Ident,
    /// The runner function.
    run_ident: Ident,
    /// `#[doc]` attributes: they describe the task, so they go to its type and value.
    docs: Vec<&'a Attribute>,
    /// `#[cfg]` attributes: every generated item shares them.
    cfgs: Vec<&'a Attribute>,
    /// Everything else: stays on the function.
    others: Vec<&'a Attribute>,
}

impl<'a> Expansion<'a> {
    fn new(options: &'a Options, function: &'a ItemFn, analyzed: &'a TaskFn) -> Self {
        let ident = &function.sig.ident;
        let name = ident.unraw().to_string();
        let (mut docs, mut cfgs, mut others) = (Vec::new(), Vec::new(), Vec::new());
        for attr in &function.attrs {
            if attr.path().is_ident("doc") {
                docs.push(attr);
            } else if attr.path().is_ident("cfg") {
                cfgs.push(attr);
            } else {
                others.push(attr);
            }
        }
        Self {
            options,
            function,
            analyzed,
            fn_ident: format_ident!("__taskhost_fn_{}", name, span = ident.span()),
            def_ident: format_ident!("__TASKHOST_DEF_{}", name.to_uppercase()),
            run_ident: format_ident!("__taskhost_run_{}", name),
            name,
            ident,
            docs,
            cfgs,
            others,
        }
    }

    fn emit(&self) -> TokenStream {
        let cfgs = &self.cfgs;
        let mut items = vec![
            self.module_level_check(),
            self.renamed_function(),
            self.definition(),
            self.registration(),
            self.runner(),
        ];
        items.extend(self.task_type());
        items.push(self.task_methods());
        items
            .into_iter()
            .map(|item| quote! { #(#cfgs)* #item })
            .collect()
    }

    /// Step 0: Django's rule "Task function must be defined at a module level.", at compile
    /// time. A marker item next to the task is imported through `self::`, which names the
    /// enclosing module, so the import fails (naming the rule) when the task is in a function.
    fn module_level_check(&self) -> TokenStream {
        let marker = format_ident!(
            "task_function_must_be_defined_at_a_module_level__{}",
            self.name,
            span = self.ident.span()
        );
        quote! {
            #[doc(hidden)]
            #[allow(non_upper_case_globals, dead_code)]
            const #marker: () = ();
            const _: () = {
                #[allow(unused_imports)]
                use self::#marker as _;
            };
        }
    }

    /// 1. The function as written, under a hidden name.
    fn renamed_function(&self) -> TokenStream {
        let mut function = self.function.clone();
        function.sig.ident = self.fn_ident.clone();
        function.attrs = self.others.iter().map(|a| (*a).clone()).collect();
        quote! {
            #[doc(hidden)]
            #function
        }
    }

    /// 2. The `TaskDefinition`: path, defaults and runner.
    fn definition(&self) -> TokenStream {
        let Self {
            name,
            def_ident,
            run_ident,
            options,
            ..
        } = self;
        let priority = Literal::i32_unsuffixed(options.priority);
        let queue_name = &options.queue_name;
        let backend = &options.backend;
        let takes_context = options.takes_context;
        let max_attempts = option(options.max_attempts.map(Literal::u32_unsuffixed));
        let timeout_secs = option(options.timeout_secs.map(Literal::f64_unsuffixed));
        let cron = match &options.cron {
            Some(cron) => quote!(::core::option::Option::Some(#cron)),
            None => quote!(::core::option::Option::None),
        };
        let state = self.analyzed.states.iter().map(|s| &s.inner);
        let runner = if self.analyzed.is_async {
            quote!(Async)
        } else {
            quote!(Sync)
        };
        quote! {
            static #def_ident: ::taskhost::__private::TaskDefinition =
                ::taskhost::__private::TaskDefinition {
                    path: ::core::concat!(::core::module_path!(), "::", #name),
                    name: #name,
                    priority: #priority,
                    queue_name: #queue_name,
                    backend: #backend,
                    takes_context: #takes_context,
                    state: &[ #(::taskhost::__private::StateType::of::<#state>(),)* ],
                    max_attempts: #max_attempts,
                    timeout_secs: #timeout_secs,
                    cron: #cron,
                    runner: ::taskhost::__private::TaskRunner::#runner(#run_ident),
                };
        }
    }

    /// 3. Registration, so a worker finds the task by path.
    fn registration(&self) -> TokenStream {
        let def_ident = &self.def_ident;
        quote! {
            ::taskhost::__private::inventory::submit! {
                ::taskhost::__private::TaskRegistration(&#def_ident)
            }
        }
    }
}

/// The parameter tuple type: `()`, `(A,)`, `(A, B,)`.
fn args_tuple_type(params: &[Param]) -> TokenStream {
    let types = params.iter().map(|p| &p.ty);
    quote!(( #(#types,)* ))
}

/// `Some(value)` or `None`, spelled in full.
fn option(value: Option<Literal>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// A local variable of generated code, invisible to the user's code (mixed-site hygiene).
fn local(name: &str) -> Ident {
    Ident::new(&format!("__taskhost_{name}"), Span::mixed_site())
}
