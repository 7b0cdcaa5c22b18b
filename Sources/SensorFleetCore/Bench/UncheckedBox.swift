/// Carries the verifier's reactor-confined state across a hop whose other side only hands it
/// back to the same reactor. (The devices no longer need it: they are actors on their reactor.)
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
