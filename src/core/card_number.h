#pragma once
// Detection of full card numbers (PANs), which the hub must never store.

#include <string_view>

namespace machub::core {

// True when the text contains a run of 13-19 digits, optionally separated by single
// spaces or dashes, that passes the Luhn check. Searches every such run inside the text
// (a token like "tok_4111 1111 1111 1111" is refused too).
//
// Precisely: a run is a maximal sequence of ASCII digits in which consecutive digits may
// be separated by one ' ' or '-' (two separators in a row, or any other character, end
// the run); separators split a run into groups and do not count as digits. A run
// contains a card number when
//  - some sequence of whole consecutive groups (the whole run included) has 13..19
//    digits and passes Luhn ("4111 1111 1111 1111", "qty 2 4111111111111111"); windows
//    that cut a group are not tried, so a Luhn-failing 16-digit processor token stays
//    accepted; or
//  - the run has more than 19 digits and ANY contiguous window of 13..19 of its digits
//    passes Luhn (a PAN glued to an expiry date is still caught; in practice this
//    refuses nearly every numeric run longer than 19 digits).
// Runs under 13 digits are never card numbers.
bool ContainsCardNumber(std::string_view text);

// The Luhn check on a string of digits only. False when empty or a non-digit appears.
bool LuhnValid(std::string_view digits);

}  // namespace machub::core
