// The MinGW counterpart of node-gyp's src/win_delay_load_hook.cc (which only
// compiles with MSVC): the addon imports Node-API from "node.exe" through the
// delay-load table, and this hook hands the loader the running executable
// (or libnode.dll) instead, so that the addon also loads in a host that is not
// named node.exe but exports Node-API itself: a renamed node.exe, Electron.
#include <windows.h>
#include <delayimp.h>

static FARPROC WINAPI load_exe_hook(unsigned int event, PDelayLoadInfo info) {
  if (event != dliNotePreLoadLibrary || _stricmp(info->szDll, "node.exe") != 0) return NULL;
  HMODULE m = GetModuleHandleA("libnode.dll");
  if (m == NULL) m = GetModuleHandleA(NULL);
  return (FARPROC)m;
}

PfnDliHook __pfnDliNotifyHook2 = load_exe_hook;
