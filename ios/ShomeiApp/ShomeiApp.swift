import ShomeiKit
import SwiftUI

@main
struct ShomeiApp: App {
    @StateObject private var model = AppModel()

    var body: some Scene {
        WindowGroup {
            RootView()
                .environmentObject(model)
                // Universal Links: https://<server>/shomei#... opened from the camera app or a link.
                .onOpenURL { url in model.open(url.absoluteString) }
                .onContinueUserActivity(NSUserActivityTypeBrowsingWeb) { activity in
                    if let url = activity.webpageURL { model.open(url.absoluteString) }
                }
        }
    }
}
