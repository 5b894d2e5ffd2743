// result.h: the project's result type for fallible calls across modules.
//
// A failure carries a machine-checkable code (each module has its own
// `enum class errc` registered as a std::error_code category) and a message
// for people that names the input and what is wrong with it.
//
//   triage::result<ticket> decode(std::string_view bytes);
//   auto r = decode(bytes);
//   if (!r) { log(r.error().message); if (r.error().code == errc::bad_json) ... }
//   use(r.value());
//
// Built on Boost.Outcome; exceptions stay for what ends an operation (see
// ../shared STYLE), results for failures the caller is expected to handle.
#pragma once

#include <string>
#include <system_error>
#include <utility>

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

namespace triage {

struct error {
  std::error_code code;
  std::string message;  // names the input (file, field, offset) and the problem

  std::string what() const { return code.message() + ": " + message; }
};

template <class T>
using result = boost::outcome_v2::basic_result<T, error, boost::outcome_v2::policy::terminate>;

inline auto success() { return boost::outcome_v2::success(); }

// make_error(errc::bad_json, "field 'body': ...") for any enum registered with
// std::is_error_code_enum.
template <class E>
error make_error(E code, std::string message) {
  return error{make_error_code(code), std::move(message)};
}

}  // namespace triage
