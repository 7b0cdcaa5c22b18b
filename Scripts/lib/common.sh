# Shared by Scripts/demo, Scripts/test and Scripts/bench. Source it; do not run it.

# The Debian packages SensorFleet needs to build, test and run its demo.
SENSORFLEET_PACKAGES=(mosquitto mosquitto-clients libmosquitto-dev libssl-dev openssl pkg-config libsqlite3-dev systemd)

# What the tests need besides: headless Chromium renders the bench HTML report (about 35 s to
# install here); prlimit (util-linux) runs sensorfleet under a small descriptor limit;
# protoc (protobuf-compiler) decodes the Sparkplug B payloads the broker delivers, independently
# of our own code (`protoc --decode … Protos/sparkplug_b.proto`).
SENSORFLEET_TEST_PACKAGES=(chromium util-linux prometheus protobuf-compiler)

# Installs whichever of the given Debian packages are missing (apt-get; as root or with sudo).
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Makes sure `swift` is on PATH (the toolchain lives in /opt/swift on these machines).
ensure_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    for dir in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
      [ -x "$dir/swift" ] && export PATH="$dir:$PATH" && break
    done
  fi
  command -v swift >/dev/null 2>&1 || { echo "error: Swift 6 is not installed (https://swift.org/install/linux/)" >&2; exit 1; }
}
