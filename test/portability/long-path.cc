// The names native/lock_win32.cc gives CreateFileW, checked under Wine (the
// matrix compiles this with mingw). Wine opens plain paths of any length, so
// the \\?\ forms are checked here as strings rather than by a failing open.
#include <cstdio>
#include <string>

extern "C" int uv_translate_sys_error(int error) { return -error; }

#include "../../native/lock_win32.cc"

namespace {

int failures = 0;

void expect(const std::wstring& input, const std::wstring& want) {
  std::wstring got = nfl::long_path_safe(input);
  if (got == want) return;
  failures++;
  std::wprintf(L"not ok: %ls\n  got  %ls\n  want %ls\n", input.c_str(), got.c_str(), want.c_str());
}

}  // namespace

int main() {
  std::wstring deep;
  while (deep.size() < 300) deep += L"\\a-folder-with-a-long-name";

  // Under MAX_PATH: untouched, Win32 normalises it itself.
  expect(L"C:\\short\\f.", L"C:\\short\\f.");
  expect(L"\\\\server\\share\\f", L"\\\\server\\share\\f");
  // Already verbatim or a device path: untouched at any length.
  expect(L"\\\\?\\C:" + deep + L"\\f.", L"\\\\?\\C:" + deep + L"\\f.");
  expect(L"\\\\.\\C:" + deep, L"\\\\.\\C:" + deep);
  // Long: prefixed, after the normalisation the prefix turns off.
  expect(L"C:" + deep + L"\\f", L"\\\\?\\C:" + deep + L"\\f");
  expect(L"C:" + deep + L"\\f. .", L"\\\\?\\C:" + deep + L"\\f");
  expect(L"C:/x" + deep + L"/../f", L"\\\\?\\C:\\x" + deep.substr(0, deep.rfind(L'\\')) + L"\\f");
  expect(L"\\\\server\\share" + deep + L"\\f.", L"\\\\?\\UNC\\server\\share" + deep + L"\\f");

  std::wprintf(L"%d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
