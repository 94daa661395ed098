// The app uses platform APIs only (camera2, android.hardware.biometrics, Keystore) and no
// androidx, so everything except the Android Gradle Plugin itself resolves from Maven Central.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

// The login/enrollment URLs the QR codes carry are https://<your Shomei server>/...;
// App Links are verified for this host (see docs/mobile.md, assetlinks.json).
val shomeiHost: String = (project.findProperty("shomei.host") as String?) ?: "shomei.example.jp"

android {
    namespace = "jp.shomei.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "jp.shomei.app"
        minSdk = 28
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        manifestPlaceholders["shomeiHost"] = shomeiHost
        ndk {
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            // uniffi-generated Kotlin (never committed; generate-bindings.sh writes it).
            java.srcDir("../../mobile-bindings/generated/kotlin")
            // libshomei_mobile.so per ABI, written by ../build-rust.sh.
            jniLibs.srcDir("src/main/jniLibs")
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

dependencies {
    // JNA for Android ships as an AAR carrying libjnidispatch.so for each ABI.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}
