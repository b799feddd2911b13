{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["native/berth.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
