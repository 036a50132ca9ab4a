#pragma once
// Detection of full card numbers (PANs), which the hub must never store.

#include <string_view>

namespace machub::core {

// True when the text contains a run of 13-19 digits, optionally separated by single
// spaces or dashes, that passes the Luhn check. Searches every such run inside the text
// (a token like "tok_4111 1111 1111 1111" is refused too).
bool ContainsCardNumber(std::string_view text);

// The Luhn check on a string of digits only.
bool LuhnValid(std::string_view digits);

}  // namespace machub::core
