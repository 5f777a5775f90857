//! Compile-time helpers of the guildstats extension crate.
//!
//! pgrx's `extension_sql!` only takes a string literal, and a declarative macro can neither
//! build one from its arguments (`concat!` is not expanded before a procedural macro reads its
//! input) nor make the `pg_finfo_*` identifier of a function. These two macros fill those gaps
//! for `state_aggregate!` in the extension crate.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, Ident, LitStr, Token};

/// A piece of SQL: a string literal, or an identifier that stands for its own name (a C symbol).
enum Piece {
    Text(LitStr),
    Name(Ident),
}

impl Parse for Piece {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(LitStr) {
            input.parse().map(Piece::Text)
        } else {
            input.parse().map(Piece::Name)
        }
    }
}

impl Piece {
    fn value(&self) -> String {
        match self {
            Piece::Text(text) => text.value(),
            Piece::Name(name) => name.to_string(),
        }
    }
}

struct Input {
    pieces: Punctuated<Piece, Token![,]>,
    rest: proc_macro2::TokenStream,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let content;
        bracketed!(content in input);
        let pieces = content.parse_terminated(Piece::parse, Token![,])?;
        let _comma: Option<Token![,]> = input.parse()?;
        Ok(Self {
            pieces,
            rest: input.parse()?,
        })
    }
}

/// `concat_extension_sql!(["CREATE ...", symbol_ident, "...;"], name = "...", requires = [...])`:
/// `extension_sql!` of the concatenated pieces, with the options after the list unchanged.
#[proc_macro]
pub fn concat_extension_sql(input: TokenStream) -> TokenStream {
    let Input { pieces, rest } = syn::parse_macro_input!(input as Input);
    let sql: String = pieces.iter().map(Piece::value).collect();
    let sql = LitStr::new(&sql, proc_macro2::Span::call_site());
    quote!(::pgrx::extension_sql!(#sql, #rest);).into()
}

/// On an `unsafe extern "C-unwind" fn name(fcinfo) -> Datum`: exports it unmangled, guards it
/// (a Rust panic or a PostgreSQL error crosses the boundary safely), and adds `pg_finfo_name`,
/// the record `PG_FUNCTION_INFO_V1` makes in C, by which PostgreSQL knows the calling convention.
#[proc_macro_attribute]
pub fn pg_v1(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse_macro_input!(item as syn::ItemFn);
    let finfo = format_ident!("pg_finfo_{}", function.sig.ident);
    quote! {
        #[::pgrx::pg_guard]
        #[unsafe(no_mangle)]
        #function

        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn #finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    }
    .into()
}
