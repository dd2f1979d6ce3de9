//! 5. The per-task type and value, with its typed methods.

use super::{args_tuple_type, Expansion};
use crate::signature::Param;
use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

impl Expansion<'_> {
    /// The per-task type (type namespace), its one value (value namespace), and `Deref` to
    /// the generic [`Task`].
    pub(super) fn task_type(&self) -> [TokenStream; 3] {
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

    /// Typed `enqueue`/`aenqueue`, `call`/`acall`, `using` and `task`.
    pub(super) fn task_methods(&self) -> TokenStream {
        let Self {
            ident,
            fn_ident,
            name,
            ..
        } = self;
        let params = &self.analyzed.params;
        let names: Vec<&Ident> = params.iter().map(|p| &p.name).collect();
        let types: Vec<&syn::Type> = params.iter().map(|p| &p.ty).collect();
        let all: Vec<&Param> = self.analyzed.all_params();
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
        let doc_aenqueue = format!("Enqueue `{name}` (the async form of `enqueue`).");
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

                /// A copy enqueued under a key derived from the task path and the arguments,
                /// held while the task is READY or RUNNING: an enqueue meanwhile with the same
                /// arguments returns the task already enqueued
                /// ([`Task::unique`](::taskhost::Task::unique)).
                pub fn unique(&self) -> ::taskhost::Result<Self> {
                    ::core::result::Result::Ok(Self {
                        task: self.task.unique()?,
                    })
                }

                /// A copy enqueued under the key `key`, held while the task is READY or
                /// RUNNING ([`Task::unique_key`](::taskhost::Task::unique_key)).
                pub fn unique_key(
                    &self,
                    key: impl ::core::convert::Into<::std::string::String>,
                ) -> ::taskhost::Result<Self> {
                    ::core::result::Result::Ok(Self {
                        task: self.task.unique_key(key)?,
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
