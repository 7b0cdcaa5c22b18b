# Shared by Scripts/demo, Scripts/test and Scripts/bench. Source it; do not run it.

# The Debian packages SensorFleet needs to build, test and run its demo.
SENSORFLEET_PACKAGES=(mosquitto mosquitto-clients libmosquitto-dev libssl-dev openssl pkg-config libsqlite3-dev libyaml-dev tzdata systemd)

# What the tests need besides: headless Chromium renders the bench HTML report (about 35 s to
# install here); prlimit (util-linux) runs sensorfleet under a small descriptor limit; iproute2
# makes the network namespaces of NetnsShardTests; python3-venv holds kubernetes-validate and amqtt;
# protoc (protobuf-compiler) decodes the Sparkplug B payloads the broker delivers, independently
# of our own code (`protoc --decode … Protos/sparkplug_b.proto`).
SENSORFLEET_TEST_PACKAGES=(chromium util-linux prometheus iproute2 python3-venv protobuf-compiler)

# A second broker that is not mosquitto, for the interoperability tests: amqtt (PyPI), in a venv
# under .build. Pinned; installed once (the tests find it at .build/amqtt-venv/bin/amqtt).
SENSORFLEET_AMQTT_VERSION=0.12.1

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

# kubernetes-validate (PyPI; it carries the Kubernetes API schemas, so it validates offline) in
# a venv under .build, for DeployManifestTests. Made once; later calls find it.
ensure_kubernetes_validate() {
  local venv=.build/venv
  [ -x "$venv/bin/kubernetes-validate" ] && return 0
  echo "==> installing kubernetes-validate (PyPI) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0
}
# Makes .build/amqtt-venv with amqtt $SENSORFLEET_AMQTT_VERSION unless it is there already.
ensure_amqtt() {
  local venv=.build/amqtt-venv
  if [ -x "$venv/bin/amqtt" ] && "$venv/bin/pip" show amqtt 2>/dev/null | grep -q "^Version: $SENSORFLEET_AMQTT_VERSION\$"; then
    return 0
  fi
  echo "==> installing amqtt $SENSORFLEET_AMQTT_VERSION into $venv (the interoperability tests' second broker)"
  mkdir -p .build
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "amqtt==$SENSORFLEET_AMQTT_VERSION"
}

