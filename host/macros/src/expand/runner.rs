//! 4. The runner: how a worker calls the function from stored JSON.

use super::{args_tuple_type, local, Expansion};
use crate::signature::Output;
use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

impl Expansion<'_> {
    /// The runner: decode the stored arguments, call the function, store what it did.
    pub(super) fn runner(&self) -> TokenStream {
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
            let outcome = local("outcome");
            quote! {
                if let ::core::result::Result::Err(#outcome) = ::taskhost::__private::no_args(
                    #def_ident.path,
                    &#inv.args,
                    &#inv.kwargs,
                ) {
                    return #outcome;
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
                    &#inv.args,
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
}
