// swift-tools-version:5.9
// Shomei for iOS.
//
// - ShomeiMobileFFI: the Rust core as an XCFramework (static library + C header + modulemap),
//   built by ./build-xcframework.sh into Generated/.
// - ShomeiMobile: the uniffi-generated Swift over it (Generated/Sources/ShomeiMobile, written
//   by the same script; never committed).
// - ShomeiKit: the app's platform code (Secure Enclave key, App Attest, camera, Keychain state,
//   view model), kept in a library so it can be unit-tested and reused by the app target.
// The SwiftUI app itself (ShomeiApp/) is an Xcode app target generated from project.yml
// (XcodeGen), because SwiftPM alone cannot produce a signed iOS app bundle.
import PackageDescription

let package = Package(
    name: "Shomei",
    platforms: [.iOS(.v16)],
    products: [
        .library(name: "ShomeiMobile", targets: ["ShomeiMobile"]),
        .library(name: "ShomeiKit", targets: ["ShomeiKit"]),
    ],
    targets: [
        .binaryTarget(
            name: "ShomeiMobileFFI",
            path: "Generated/ShomeiMobileFFI.xcframework"
        ),
        .target(
            name: "ShomeiMobile",
            dependencies: ["ShomeiMobileFFI"],
            path: "Generated/Sources/ShomeiMobile"
        ),
        .target(
            name: "ShomeiKit",
            dependencies: ["ShomeiMobile"],
            path: "Sources/ShomeiKit",
            linkerSettings: [
                .linkedFramework("Security"),
                .linkedFramework("LocalAuthentication"),
                .linkedFramework("AVFoundation"),
                .linkedFramework("DeviceCheck"),
                // reqwest/rustls in the static library need these system frameworks.
                .linkedFramework("SystemConfiguration"),
            ]
        ),
        // Pure-logic unit tests of ShomeiKit; run on a Mac with an iOS simulator
        // (xcodebuild test), never on the Linux CI.
        .testTarget(
            name: "ShomeiKitTests",
            dependencies: ["ShomeiKit"],
            path: "Tests/ShomeiKitTests"
        ),
    ]
)
