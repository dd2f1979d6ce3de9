//! Reading the task function's signature, with the checks Django makes at run time that Rust can
//! make at compile time.

use crate::errors::Errors;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use std::collections::HashSet;
use syn::ext::IdentExt;
use syn::{
    Error, FnArg, GenericArgument, GenericParam, Ident, ItemFn, Pat, PatType, PathArguments,
    ReturnType, Signature, Type,
};

/// Django's message for a function that is not at module level (here: a method).
const MODULE_LEVEL: &str = "Task function must be defined at a module level.";

/// Django's message for `takes_context` without a first parameter named `context`.
const NO_CONTEXT: &str = "Task takes context but does not have a first argument of 'context'.";

/// Why parameters must be owned, concrete types.
const STORED_AS_JSON: &str =
    "task arguments are stored as JSON and decoded when the task runs, so each must be an owned, \
     non-generic type (use String instead of &str, Vec<T> instead of &[T])";

/// Why application state must be owned.
const SHARED_STATE: &str =
    "application state is registered once and shared by every run, so its type must be owned \
     and 'static (`State<Mailer>`, `State<dyn Trait>`; share borrowed data through an `Arc`)";

/// What the expansion needs to know about the task function.
pub(crate) struct TaskFn {
    /// Whether it is an `async fn`.
    pub is_async: bool,
    /// The `context: TaskContext` parameter, for a `takes_context` task.
    pub context: Option<Param>,
    /// The `State<T>` parameters, taken from the application state when the task runs.
    pub states: Vec<StateParam>,
    /// The parameters whose values are stored (everything but the context and the states).
    pub params: Vec<Param>,
    /// Every parameter, in the order written.
    pub order: Vec<Role>,
    /// What it returns.
    pub output: Output,
}

/// What a parameter is, with its index in [`TaskFn::states`] or [`TaskFn::params`].
#[derive(Clone, Copy)]
pub(crate) enum Role {
    /// The context.
    Context,
    /// A `State<T>`.
    State(usize),
    /// A stored argument.
    Arg(usize),
}

/// A `State<T>` parameter.
pub(crate) struct StateParam {
    /// The parameter as written.
    pub param: Param,
    /// `T`.
    pub inner: Type,
}

impl TaskFn {
    /// Every parameter in the order written: what `call` and `acall` take.
    pub fn all_params(&self) -> Vec<&Param> {
        self.order
            .iter()
            .map(|role| match *role {
                Role::Context => self.context.as_ref().expect("a context role has a context"),
                Role::State(i) => &self.states[i].param,
                Role::Arg(i) => &self.params[i],
            })
            .collect()
    }
}

/// One parameter, named as the generated methods name it.
pub(crate) struct Param {
    /// The name as written, or `argN` for a pattern such as `(a, b): (i32, i32)`.
    pub name: Ident,
    /// The type as written.
    pub ty: Type,
}

/// How the function's return value becomes the task's stored outcome.
pub(crate) enum Output {
    /// No return type (or `()`): the task returns `null`.
    Unit,
    /// A plain value, stored as the return value.
    Value(Type),
    /// A `Result`: `Ok(T)` is stored, `Err(e)` fails the run. Holds `T`.
    Result(Type),
}

impl Output {
    /// The task's value type: the `R` of `Task<A, R>`.
    pub fn value_type(&self) -> TokenStream {
        match self {
            Output::Unit => quote::quote!(()),
            Output::Value(ty) | Output::Result(ty) => ty.to_token_stream(),
        }
    }
}

/// Check the function and describe it; every problem found is reported at once.
pub(crate) fn analyze(item: &ItemFn, takes_context: bool) -> syn::Result<TaskFn> {
    let sig = &item.sig;
    let mut errors = Errors::default();
    check_qualifiers(sig, &mut errors);
    check_generics(sig, &mut errors);

    let mut typed: Vec<&PatType> = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                errors.push(Error::new_spanned(receiver, MODULE_LEVEL));
            }
            FnArg::Typed(param) => typed.push(param),
        }
    }
    let mut all: Vec<Param> = typed
        .iter()
        .zip(param_names(&typed))
        .map(|(param, name)| Param {
            name,
            ty: (*param.ty).clone(),
        })
        .collect();

    let context = if takes_context {
        match typed.first() {
            Some(first) if is_named_context(&first.pat) => Some(all.remove(0)),
            Some(first) => {
                errors.push(Error::new_spanned(first, NO_CONTEXT));
                None
            }
            None => {
                errors.push(Error::new(sig.paren_token.span.join(), NO_CONTEXT));
                None
            }
        }
    } else {
        for param in &typed {
            if last_segment(&param.ty).is_some_and(|s| s.ident == "TaskContext") {
                errors.push(Error::new_spanned(
                    &param.ty,
                    "a `TaskContext` is passed only to tasks marked `takes_context`: write \
                     `#[task(takes_context)]` and make `context: TaskContext` the first parameter",
                ));
            }
        }
        None
    };

    let mut order: Vec<Role> = context.iter().map(|_| Role::Context).collect();
    let (mut states, mut params) = (Vec::new(), Vec::new());
    for param in all {
        match state_type(&param.ty) {
            Some(inner) => {
                check_state_type(&inner, &mut errors);
                order.push(Role::State(states.len()));
                states.push(StateParam { param, inner });
            }
            None => {
                check_param_type(&param.ty, &mut errors);
                order.push(Role::Arg(params.len()));
                params.push(param);
            }
        }
    }

    let output = output(&sig.output, &mut errors);
    match errors.into_inner() {
        Some(err) => Err(err),
        None => Ok(TaskFn {
            is_async: sig.asyncness.is_some(),
            context,
            states,
            params,
            order,
            output,
        }),
    }
}

/// `T` of a parameter type written `State<T>` (any path ending in `State` with one type
/// argument): application state, not a stored argument.
fn state_type(ty: &Type) -> Option<Type> {
    let segment = last_segment(ty).filter(|s| s.ident == "State")?;
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [GenericArgument::Type(inner)] => Some(inner.clone()),
        _ => None,
    }
}

/// A state type may not borrow nor be `impl Trait`.
fn check_state_type(inner: &Type, errors: &mut Errors) {
    let what = match find_problem(inner.to_token_stream()) {
        Some(Problem::ImplTrait) => "`impl Trait` state types are not supported",
        Some(Problem::Borrow) => "borrowed state types (references, lifetimes) are not supported",
        None => return,
    };
    errors.push(Error::new_spanned(inner, format!("{what}: {SHARED_STATE}")));
}

/// `const`, `unsafe`, `extern` and variadic functions cannot be tasks.
fn check_qualifiers(sig: &Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(Error::new(
            constness.span,
            "#[task] cannot be used on a `const fn`: a task runs later, from stored arguments; \
             remove `const`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(Error::new(
            unsafety.span,
            "#[task] cannot be used on an `unsafe fn`: whoever runs the task (a worker, another \
             process) cannot uphold its safety requirements; make the function safe and use \
             `unsafe` blocks inside it",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(Error::new_spanned(
            abi,
            "#[task] cannot be used on an `extern` fn: a task is called from Rust with arguments \
             decoded from JSON; remove the `extern` ABI",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new_spanned(
            variadic,
            "#[task] cannot be used on a variadic fn: a task takes a fixed list of typed arguments",
        ));
    }
}

/// Generic and lifetime parameters cannot be recovered from stored JSON.
fn check_generics(sig: &Signature, errors: &mut Errors) {
    for param in &sig.generics.params {
        let what = match param {
            GenericParam::Lifetime(_) => "a task cannot have lifetime parameters",
            GenericParam::Type(_) | GenericParam::Const(_) => "a task cannot be generic",
        };
        errors.push(Error::new_spanned(
            param,
            format!("{what}: {STORED_AS_JSON}"),
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(Error::new_spanned(
            where_clause,
            format!("a task cannot have a where clause: {STORED_AS_JSON}"),
        ));
    }
}

/// A parameter type may not borrow nor be `impl Trait`.
fn check_param_type(ty: &Type, errors: &mut Errors) {
    match find_problem(ty.to_token_stream()) {
        Some(Problem::ImplTrait) => errors.push(Error::new_spanned(
            ty,
            format!("`impl Trait` parameters are not supported: {STORED_AS_JSON}"),
        )),
        Some(Problem::Borrow) => errors.push(Error::new_spanned(
            ty,
            format!(
                "borrowed parameters (references, lifetimes) are not supported: {STORED_AS_JSON}"
            ),
        )),
        None => {}
    }
}

/// What keeps a type from being decoded from JSON by itself.
enum Problem {
    /// `&` or a lifetime other than `'static`.
    Borrow,
    /// `impl Trait`.
    ImplTrait,
}

fn find_problem(tokens: TokenStream) -> Option<Problem> {
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Group(group) => {
                if let Some(problem) = find_problem(group.stream()) {
                    return Some(problem);
                }
            }
            TokenTree::Punct(p) if p.as_char() == '&' => return Some(Problem::Borrow),
            TokenTree::Punct(p) if p.as_char() == '\'' => {
                let name = tokens.next().map(|t| t.to_string());
                if name.as_deref() != Some("static") {
                    return Some(Problem::Borrow);
                }
            }
            TokenTree::Ident(ident) if ident == "impl" => return Some(Problem::ImplTrait),
            _ => {}
        }
    }
    None
}

/// Names for the generated methods' parameters: as written, or `argN` for patterns.
fn param_names(typed: &[&PatType]) -> Vec<Ident> {
    let written: Vec<Option<Ident>> = typed.iter().map(|p| simple_name(&p.pat)).collect();
    let mut taken: HashSet<String> = written
        .iter()
        .flatten()
        .map(|ident| ident.unraw().to_string())
        .collect();
    written
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            name.unwrap_or_else(|| {
                let mut candidate = format!("arg{index}");
                while taken.contains(&candidate) {
                    candidate.push('_');
                }
                taken.insert(candidate.clone());
                Ident::new(&candidate, Span::call_site())
            })
        })
        .collect()
}

/// `x`, `mut x`, `ref x` → `x`; other patterns have no single name.
fn simple_name(pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(p) if p.subpat.is_none() => Some(p.ident.clone()),
        _ => None,
    }
}

fn is_named_context(pat: &Pat) -> bool {
    simple_name(pat).is_some_and(|ident| ident.unraw() == "context")
}

/// Look through `(T)` and the invisible groups `macro_rules!` makes.
fn strip_type(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => strip_type(&g.elem),
        Type::Paren(p) => strip_type(&p.elem),
        other => other,
    }
}

/// The last path segment of a plain path type (`std::io::Result<T>` → `Result`).
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match strip_type(ty) {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

/// Classify the return type: unit, `Result` (by its last path segment), or a plain value.
fn output(ret: &ReturnType, errors: &mut Errors) -> Output {
    let ReturnType::Type(_, ty) = ret else {
        return Output::Unit;
    };
    if matches!(strip_type(ty), Type::Tuple(t) if t.elems.is_empty()) {
        return Output::Unit;
    }
    if let Some(Problem::ImplTrait) = find_problem(ty.to_token_stream()) {
        errors.push(Error::new_spanned(
            ty,
            "`impl Trait` return types are not supported: the return value is stored as JSON and \
             decoded when read, so it needs one concrete, owned type",
        ));
        return Output::Unit;
    }
    let value = match last_segment(ty) {
        Some(segment) if segment.ident == "Result" => match result_ok_type(segment) {
            Some(ok) => Output::Result(ok.clone()),
            None => {
                errors.push(Error::new_spanned(
                    ty,
                    "cannot tell the task's value type from a `Result` without type arguments: \
                     write `Result<T, E>` in full (`T` is what the task stores)",
                ));
                return Output::Unit;
            }
        },
        _ => Output::Value((**ty).clone()),
    };
    if let Output::Value(stored) | Output::Result(stored) = &value {
        if let Some(Problem::Borrow) = find_problem(stored.to_token_stream()) {
            errors.push(Error::new_spanned(
                stored,
                "the return value cannot be a reference: it is stored as JSON and decoded when \
                 read, so it must be an owned type (use String instead of &str)",
            ));
        }
    }
    value
}

/// `T` of `Result<T, ..>`.
fn result_ok_type(segment: &syn::PathSegment) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}
