//! 4. The runner: how a worker calls the function from stored JSON.

use super::{args_tuple_type, local, Expansion};
use crate::signature::{Output, Role};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
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
        let context = local("context");
        let take_context = self.analyzed.context.as_ref().map(|_| {
            let given = local("given");
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
        let states: Vec<Ident> = (0..self.analyzed.states.len())
            .map(|i| local(&format!("state{i}")))
            .collect();
        let take_states = self
            .analyzed
            .states
            .iter()
            .zip(&states)
            .map(|(state, name)| {
                let inner = &state.inner;
                let outcome = local("outcome");
                // Spanned at the type: a `T` that is not `Send + Sync` is reported there.
                let take_state = quote_spanned!(inner.span()=> ::taskhost::__private::take_state);
                quote! {
                    let #name = match #take_state::<#inner>(
                        #def_ident.path,
                        &#inv.state,
                    ) {
                        ::core::result::Result::Ok(#name) => #name,
                        ::core::result::Result::Err(#outcome) => return #outcome,
                    };
                }
            });
        let params = &self.analyzed.params;
        let args: Vec<Ident> = (0..params.len())
            .map(|i| local(&format!("arg{i}")))
            .collect();
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
            let tuple = args_tuple_type(params);
            let (decoded, outcome) = (local("decoded"), local("outcome"));
            quote! {
                let ( #(#args,)* ) = match ::taskhost::__private::decode_args::<#tuple>(
                    #def_ident.path,
                    &#inv.args,
                    &#inv.kwargs,
                ) {
                    ::core::result::Result::Ok(#decoded) => #decoded,
                    ::core::result::Result::Err(#outcome) => return #outcome,
                };
            }
        };
        let call_args = self.analyzed.order.iter().map(|role| match *role {
            Role::Context => &context,
            Role::State(i) => &states[i],
            Role::Arg(i) => &args[i],
        });
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
            #(#take_states)*
            #decode
            #store
        }
    }
}
