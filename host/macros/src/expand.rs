//! The code `#[task]` writes: the renamed function, its definition and registration, the runner
//! that calls it from stored JSON, and the per-task type and value.

use crate::options::Options;
use crate::signature::{self, Output, Param, TaskFn};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};
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
    match (analyzed, option_errors) {
        (Ok(analyzed), None) => Expansion::new(&options, &function, &analyzed).emit(),
        (Ok(_), Some(err)) => with_item(err, item),
        (Err(mut err), option_errors) => {
            if let Some(option_errors) = option_errors {
                err.combine(option_errors);
            }
            with_item(err, item)
        }
    }
}

/// The errors, followed by the item as written (allowed to be unused: it cannot be used yet).
fn with_item(err: syn::Error, item: TokenStream) -> TokenStream {
    let errors = err.to_compile_error();
    quote! {
        #errors
        #[allow(dead_code)]
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
                    max_attempts: #max_attempts,
                    timeout_secs: #timeout_secs,
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

    /// 4. The runner: decode the stored arguments, call the function, store what it did.
    fn runner(&self) -> TokenStream {
        let run_ident = &self.run_ident;
        let inv = local("invocation");
        let body = self.runner_body(&inv);
        if self.analyzed.is_async {
            quote! {
                fn #run_ident(
                    #inv: ::taskhost::__private::Invocation,
                ) -> ::taskhost::__private::BoxTaskFuture {
                    ::taskhost::__private::catch_async(async move { #body })
                }
            }
        } else {
            quote! {
                fn #run_ident(
                    #inv: ::taskhost::__private::Invocation,
                ) -> ::taskhost::__private::TaskOutcome {
                    ::taskhost::__private::catch_sync(move || { #body })
                }
            }
        }
    }

    fn runner_body(&self, inv: &Ident) -> TokenStream {
        let def_ident = &self.def_ident;
        let mut call_args = Vec::new();
        let take_context = self.analyzed.context.as_ref().map(|_| {
            let context = local("context");
            let given = local("given");
            call_args.push(context.clone());
            quote! {
                let #context = match #inv.context {
                    ::core::option::Option::Some(#given) => #given,
                    ::core::option::Option::None => {
                        return ::taskhost::__private::failure(
                            "taskhost::RunError",
                            &::std::format!(
                                "task '{}' takes a context but none was given",
                                #def_ident.path,
                            ),
                            "",
                        );
                    }
                };
            }
        });
        let params = &self.analyzed.params;
        let decode = if params.is_empty() {
            quote! {
                if !#inv.args.is_empty() || !#inv.kwargs.is_empty() {
                    return ::taskhost::__private::failure(
                        "taskhost::UnsupportedValue",
                        &::std::format!(
                            "task '{}' takes no arguments, got {}",
                            #def_ident.path,
                            #inv.args.len() + #inv.kwargs.len(),
                        ),
                        "",
                    );
                }
            }
        } else {
            let locals: Vec<Ident> = (0..params.len())
                .map(|i| local(&format!("arg{i}")))
                .collect();
            call_args.extend(locals.iter().cloned());
            let tuple = args_tuple_type(params);
            let (decoded, outcome) = (local("decoded"), local("outcome"));
            quote! {
                let ( #(#locals,)* ) = match ::taskhost::__private::decode_args::<#tuple>(
                    #def_ident.path,
                    #inv.args,
                    &#inv.kwargs,
                ) {
                    ::core::result::Result::Ok(#decoded) => #decoded,
                    ::core::result::Result::Err(#outcome) => return #outcome,
                };
            }
        };
        let fn_ident = &self.fn_ident;
        let mut call = quote!(#fn_ident( #(#call_args),* ));
        if self.analyzed.is_async {
            call = quote!(#call.await);
        }
        let store = match &self.analyzed.output {
            Output::Unit => quote! {
                #call;
                ::taskhost::__private::from_value(())
            },
            Output::Value(_) => quote!(::taskhost::__private::from_value(#call)),
            Output::Result(_) => quote!(::taskhost::__private::from_result(#call)),
        };
        quote! {
            #take_context
            #decode
            #store
        }
    }

    /// 5a. The per-task type (type namespace), its one value (value namespace), and `Deref` to
    /// the generic [`Task`].
    fn task_type(&self) -> [TokenStream; 3] {
        let Self {
            ident, def_ident, ..
        } = self;
        let vis = &self.function.vis;
        let docs = &self.docs;
        let task_type = self.task_type_path();
        let struct_item = quote! {
            #(#docs)*
            #[allow(non_camel_case_types, dead_code)]
            #[derive(::core::clone::Clone, ::core::cmp::PartialEq, ::core::fmt::Debug)]
            #vis struct #ident {
                task: #task_type,
            }
        };
        let static_item = quote! {
            #(#docs)*
            #[allow(non_upper_case_globals, dead_code)]
            #vis static #ident: #ident = #ident {
                task: ::taskhost::Task::from_definition(&#def_ident),
            };
        };
        let deref_impl = quote! {
            impl ::core::ops::Deref for #ident {
                type Target = #task_type;
                fn deref(&self) -> &Self::Target {
                    &self.task
                }
            }
        };
        [struct_item, static_item, deref_impl]
    }

    /// 5b. Typed `enqueue`/`aenqueue`, `call`/`acall`, `using` and `task`.
    fn task_methods(&self) -> TokenStream {
        let Self {
            ident,
            fn_ident,
            name,
            ..
        } = self;
        let params = &self.analyzed.params;
        let names: Vec<&Ident> = params.iter().map(|p| &p.name).collect();
        let types: Vec<&syn::Type> = params.iter().map(|p| &p.ty).collect();
        let all: Vec<&Param> = self.analyzed.context.iter().chain(params).collect();
        let all_names: Vec<&Ident> = all.iter().map(|p| &p.name).collect();
        let all_types: Vec<&syn::Type> = all.iter().map(|p| &p.ty).collect();
        let value = self.analyzed.output.value_type();
        let output = &self.function.sig.output;
        let task_type = self.task_type_path();
        let (call_body, acall_body) = if self.analyzed.is_async {
            (
                quote!(::taskhost::__private::block_on(#fn_ident( #(#all_names),* ))),
                quote!(#fn_ident( #(#all_names),* ).await),
            )
        } else {
            (
                quote!(#fn_ident( #(#all_names),* )),
                quote!(#fn_ident( #(#all_names),* )),
            )
        };
        let doc_enqueue = format!(
            "Enqueue `{name}` with these arguments on its backend (stored as JSON), returning \
             its `TaskResult`."
        );
        let doc_aenqueue = format!("The async form of [`{name}::enqueue`].");
        let doc_call = format!(
            "Run `{name}` now, in this thread, and return what it returns (Django's `call`).{}",
            if self.analyzed.is_async {
                " The future is driven to completion here."
            } else {
                ""
            }
        );
        let doc_acall = format!("Run `{name}` now and return what it returns (Django's `acall`).");
        quote! {
            #[allow(dead_code, clippy::too_many_arguments)]
            impl #ident {
                #[doc = #doc_enqueue]
                pub fn enqueue(&self, #(#names: #types),*)
                    -> ::taskhost::Result<::taskhost::TaskResult<#value>>
                {
                    self.task.enqueue_args(( #(#names,)* ))
                }

                #[doc = #doc_aenqueue]
                pub async fn aenqueue(&self, #(#names: #types),*)
                    -> ::taskhost::Result<::taskhost::TaskResult<#value>>
                {
                    self.task.aenqueue_args(( #(#names,)* )).await
                }

                #[doc = #doc_call]
                pub fn call(&self, #(#all_names: #all_types),*) #output {
                    #call_body
                }

                #[doc = #doc_acall]
                pub async fn acall(&self, #(#all_names: #all_types),*) #output {
                    #acall_body
                }

                /// A copy with `options` applied, validated again against its (possibly new)
                /// backend; `self` is unchanged (Django's `using`).
                pub fn using(
                    &self,
                    options: ::taskhost::TaskOptions,
                ) -> ::taskhost::Result<Self> {
                    ::core::result::Result::Ok(Self {
                        task: self.task.using(options)?,
                    })
                }

                /// The underlying generic [`Task`](::taskhost::Task).
                pub fn task(&self) -> &#task_type {
                    &self.task
                }
            }
        }
    }

    /// `::taskhost::Task<(A, B,), R>`.
    fn task_type_path(&self) -> TokenStream {
        let args = args_tuple_type(&self.analyzed.params);
        let value = self.analyzed.output.value_type();
        quote!(::taskhost::Task<#args, #value>)
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
