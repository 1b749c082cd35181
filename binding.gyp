{
  "targets": [
    {
      "target_name": "native_file_lock",
      "sources": ["native/binding.cc", "native/registry.cc", "native/wait_pool.cc", "native/sync_wait.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17"] }
      },
      "conditions": [
        ["OS=='win'", { "sources": ["native/lock_win32.cc"] }],
        ["OS!='win'", { "sources": ["native/lock_posix.cc", "native/flock_model_posix.cc", "native/alarm_posix.cc"] }],
        ["OS=='linux'", { "libraries": ["-ldl"] }]
      ]
    }
  ]
}
