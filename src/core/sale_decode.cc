// Stage 1 of the sale codec: a SAX pass that sorts the body into fixed slots, then stage 2
// (sale_validate.cc). DecodeSale and DecodeCanonical.
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/sale_codec.h"
#include "core/sale_codec_internal.h"
#include "core/text.h"

namespace machub::core {
namespace sale_internal {
namespace {

using Json = nlohmann::json;

template <size_t N>
int FindName(const std::string_view (&names)[N], std::string_view key) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == key) return static_cast<int>(i);
  }
  return -1;
}

class SaxHandler {
 public:
  enum class Failure { kNone, kSyntax, kDuplicateKey, kNotObject };

  explicit SaxHandler(RawSale* raw) : raw_(raw) { frames_.reserve(8); }

  Failure failure() const { return failure_; }
  size_t error_position() const { return error_position_; }

  // --- nlohmann SAX interface ---
  bool null() { return Scalar(Kind::kNull, nullptr, false); }
  bool boolean(bool value) { return Scalar(Kind::kBool, nullptr, value); }
  bool number_integer(Json::number_integer_t /*value*/) {
    return Scalar(Kind::kNumber, nullptr, false);
  }
  bool number_unsigned(Json::number_unsigned_t /*value*/) {
    return Scalar(Kind::kNumber, nullptr, false);
  }
  bool number_float(Json::number_float_t /*value*/, const Json::string_t& /*text*/) {
    return Scalar(Kind::kNumber, nullptr, false);
  }
  bool string(Json::string_t& value) { return Scalar(Kind::kString, &value, false); }
  bool binary(Json::binary_t& /*value*/) { return Scalar(Kind::kObject, nullptr, false); }

  bool start_object(std::size_t /*size*/) {
    if (depth_ == 0) {
      Push(FrameType::kRoot, raw_->f);
      return true;
    }
    Frame& top = Top();
    switch (top.type) {
      case FrameType::kLines:
        Push(FrameType::kLine, NewLine(Kind::kObject)->f);
        return true;
      case FrameType::kPayments:
        Push(FrameType::kPayment, NewPayment(Kind::kObject)->f);
        return true;
      default:
        TakeSlot(top, Kind::kObject);
        Push(FrameType::kSkipObject, nullptr);
        return true;
    }
  }

  bool start_array(std::size_t /*size*/) {
    if (depth_ == 0) return Fail(Failure::kNotObject);
    Frame& top = Top();
    switch (top.type) {
      case FrameType::kRoot:
        if (top.pending == kLines || top.pending == kPayments) {
          const FrameType type = top.pending == kLines ? FrameType::kLines : FrameType::kPayments;
          TakeSlot(top, Kind::kArray);
          Push(type, nullptr);
          return true;
        }
        TakeSlot(top, Kind::kArray);
        Push(FrameType::kSkipArray, nullptr);
        return true;
      case FrameType::kLines:
        NewLine(Kind::kArray);
        Push(FrameType::kSkipArray, nullptr);
        return true;
      case FrameType::kPayments:
        NewPayment(Kind::kArray);
        Push(FrameType::kSkipArray, nullptr);
        return true;
      default:
        TakeSlot(top, Kind::kArray);
        Push(FrameType::kSkipArray, nullptr);
        return true;
    }
  }

  bool key(Json::string_t& key) {
    Frame& top = Top();
    int index = -1;
    switch (top.type) {
      case FrameType::kRoot:
        index = FindName(kRootNames, key);
        break;
      case FrameType::kLine:
        index = FindName(kLineNames, key);
        break;
      case FrameType::kPayment:
        index = FindName(kPaymentNames, key);
        break;
      default:
        break;
    }
    if (index >= 0) {
      if (top.slots[index].kind != Kind::kAbsent) return Fail(Failure::kDuplicateKey);
      top.pending = index;
      return true;
    }
    // Unknown members (and every member of a skipped object) are remembered only to
    // catch duplicates; objects are small, so a linear scan beats a hash set.
    for (const std::string& seen : top.keys) {
      if (seen == key) return Fail(Failure::kDuplicateKey);
    }
    top.keys.push_back(key);
    top.pending = -1;
    if (!raw_->has_unknown && top.type != FrameType::kSkipObject) {
      raw_->has_unknown = true;
      raw_->unknown_field =
          PathOfMember(top.type, PlainMemberName(key) ? std::string_view(key) : "");
    }
    return true;
  }

  bool end_object() {
    --depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*ex*/) {
    // The library's message quotes the offending input, which may be anything a client
    // sent (a card number); only the position is kept.
    error_position_ = position;
    return Fail(Failure::kSyntax);
  }

 private:
  enum class FrameType { kRoot, kLines, kPayments, kLine, kPayment, kSkipObject, kSkipArray };

  struct Frame {
    FrameType type = FrameType::kSkipArray;
    int pending = -1;  // slot index of the member whose value comes next; -1: skip it
    Raw* slots = nullptr;
    std::vector<std::string> keys;
  };

  Frame& Top() { return frames_[depth_ - 1]; }

  void Push(FrameType type, Raw* slots) {
    if (depth_ == frames_.size()) frames_.emplace_back();
    Frame& frame = frames_[depth_++];
    frame.type = type;
    frame.pending = -1;
    frame.slots = slots;
    frame.keys.clear();  // keeps capacity: frames are reused across siblings
  }

  // Records the kind of the value of the pending member (if the member is known).
  Raw* TakeSlot(Frame& frame, Kind kind) {
    if (frame.slots == nullptr || frame.pending < 0) return nullptr;
    Raw* slot = &frame.slots[frame.pending];
    slot->kind = kind;
    frame.pending = -1;
    return slot;
  }

  bool Scalar(Kind kind, Json::string_t* text, bool boolean) {
    if (depth_ == 0) return Fail(Failure::kNotObject);
    Frame& top = Top();
    switch (top.type) {
      case FrameType::kLines:
        NewLine(kind);
        return true;
      case FrameType::kPayments:
        NewPayment(kind);
        return true;
      default:
        break;
    }
    if (Raw* slot = TakeSlot(top, kind)) {
      slot->boolean = boolean;
      if (text != nullptr) slot->str = std::move(*text);
    }
    return true;
  }

  RawLine* NewLine(Kind kind) {
    ++raw_->line_count;
    RawLine* line = &scratch_line_;
    if (raw_->lines.size() < kMaxLines) {
      if (raw_->lines.empty()) raw_->lines.reserve(4);
      line = &raw_->lines.emplace_back();
    } else {
      scratch_line_ = RawLine{};  // over the limit: parsed for errors, then dropped
    }
    line->kind = kind;
    return line;
  }

  RawPayment* NewPayment(Kind kind) {
    ++raw_->payment_count;
    RawPayment* payment = &scratch_payment_;
    if (raw_->payments.size() < kMaxPayments) {
      if (raw_->payments.empty()) raw_->payments.reserve(2);
      payment = &raw_->payments.emplace_back();
    } else {
      scratch_payment_ = RawPayment{};
    }
    payment->kind = kind;
    return payment;
  }

  std::string PathOfMember(FrameType type, std::string_view key) const {
    std::string path;
    if (type == FrameType::kLine) {
      path = "lines[" + std::to_string(raw_->line_count - 1) + "]";
    } else if (type == FrameType::kPayment) {
      path = "payments[" + std::to_string(raw_->payment_count - 1) + "]";
    }
    if (!key.empty()) {
      if (!path.empty()) path.push_back('.');
      path.append(key);
    }
    return path;
  }

  bool Fail(Failure failure) {
    if (failure_ == Failure::kNone) failure_ = failure;
    return false;  // stops the parser
  }

  RawSale* raw_;
  std::vector<Frame> frames_;
  size_t depth_ = 0;
  RawLine scratch_line_;
  RawPayment scratch_payment_;
  Failure failure_ = Failure::kNone;
  size_t error_position_ = 0;
};

}  // namespace

Result<Sale> Decode(std::string_view json, Rules rules) {
  RawSale raw;
  SaxHandler handler(&raw);
  try {
    Json::sax_parse(json.begin(), json.end(), &handler);
  } catch (const std::exception&) {
    // sax_parse reports syntax errors through the handler; anything thrown is resource
    // exhaustion, reported the same way rather than crossing the module boundary.
    return Status(ErrorCode::kInvalidJson, "request body could not be parsed");
  }
  switch (handler.failure()) {
    case SaxHandler::Failure::kNone:
      break;
    case SaxHandler::Failure::kSyntax:
      return Status(ErrorCode::kInvalidJson, "request body is not valid JSON (error at byte " +
                                                 std::to_string(handler.error_position()) + ")");
    case SaxHandler::Failure::kDuplicateKey:
      return Status(ErrorCode::kInvalidJson,
                    "request body has a duplicate key in an object, which JSON readers "
                    "resolve differently");
    case SaxHandler::Failure::kNotObject:
      return Status(ErrorCode::kInvalidJson, "request body must be a JSON object");
  }
  return Validate(raw, rules);
}

}  // namespace sale_internal

using sale_internal::Rules;

Result<Sale> DecodeSale(std::string_view json) {
  return sale_internal::Decode(json, Rules::kRequest);
}

Result<Sale> DecodeCanonical(std::string_view canonical) {
  Result<Sale> sale = sale_internal::Decode(canonical, Rules::kStored);
  if (!sale.ok()) {
    // Stored bytes that no longer decode are corruption (or a rule tightened without a
    // migration), never the client's fault.
    return Status(ErrorCode::kInternal, "stored sale does not decode: " + sale.status().ToString());
  }
  return sale;
}

}  // namespace machub::core
