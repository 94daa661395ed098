// Shomei Android app. Open this directory in Android Studio.
// Before the first build run ./build-rust.sh (Rust libraries for the ABIs) and
// ../mobile-bindings/scripts/generate-bindings.sh (the uniffi Kotlin); see docs/mobile.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "Shomei"
include(":app")
