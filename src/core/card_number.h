#pragma once
// Detection of full card numbers (PANs), which the hub must never store or log.
//
// THE ENTRY POINT FOR VALIDATION is CheckNoCardNumber(text, field_path): call it on
// EVERY free-text field of every entry type the hub accepts (ids, refs, names, skus,
// cashier, notes, payment fields, store-day fields such as drawer ids, reasons and
// z-report references), before that field's own format checks. It answers
// kCardNumberForbidden with the field's JSON path and a message that never quotes the
// value. Log the path, never the value. Money fields use CheckNoCardNumberInAmount.
//
// Thread-safety: every function here is pure and may be called from any thread.

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace machub::core {

// kCardNumberForbidden (field = field_path, message names the field and never quotes the
// value) when ContainsCardNumber(text); OK otherwise. Cost: one pass over the text, no
// allocation unless a run of 13 or more digits is found (bench/card_number_bench).
Status CheckNoCardNumber(std::string_view text, std::string_view field_path);

// A card number typed into a money field is a valid decimal when it has 13 to 15 digits
// (below the 10^15 minor-unit bound). No till takes 10^12 major units, so an amount whose
// major part, or whose whole value in minor units, is a Luhn-valid run of 13+ digits is
// refused as a card number (kCardNumberForbidden, field = field_path).
Status CheckNoCardNumberInAmount(int64_t minor_units_value, int minor_units,
                                 std::string_view field_path);

// True when the text contains a card number: a run of 13-19 digits that passes Luhn.
//
// Precisely: the text is read as UTF-8 (bytes that are not valid UTF-8 count as "other").
//  - A digit is any Unicode decimal digit (general category Nd: ASCII, fullwidth,
//    Arabic-Indic, Devanagari, ...), normalised to its value 0-9 before the Luhn check.
//  - A separator is a character people and scanners put inside a PAN: space, '.', '_',
//    '-', '/', '\', ',' and their Unicode look-alikes (no-break and other spaces, dashes
//    and minus signs, fullwidth . / - _ ,, middle dot, ideographic space). Not ':' (times).
//  - A run is a maximal sequence of digits in which consecutive digits may be separated
//    by 1 to 4 separators ("4111 1111", "4111  -  1111", "4111._1111"); anything else
//    (a letter, a 5th separator) ends it. Separators split a run into groups.
//  - A run contains a card number when some sequence of whole consecutive groups (the
//    whole run included) has 13..19 digits and passes Luhn; windows that cut a group are
//    not tried, so a Luhn-failing 16-digit processor token stays accepted; or when the
//    run has more than 19 digits and ANY contiguous window of 13..19 of its digits passes
//    Luhn (a PAN glued to an expiry date is still caught; in practice this refuses nearly
//    every numeric run longer than 19 digits).
// Runs under 13 digits are never card numbers. Exception for barcodes: a run of exactly 13
// or 14 digits without separators whose last digit is a valid GS1 check digit (EAN-13,
// GTIN-14) is a product code, not a card (one in ten barcodes passes Luhn; 13- and
// 14-digit PANs are rare, and the one in ten of them that is also GS1-valid is accepted).
bool ContainsCardNumber(std::string_view text);

// The Luhn check on a string of ASCII digits only. False when empty or a non-digit appears.
bool LuhnValid(std::string_view digits);

}  // namespace machub::core
