import AVFoundation
import ShomeiKit
import ShomeiMobile
import SwiftUI

struct RootView: View {
    @EnvironmentObject var model: AppModel

    var body: some View {
        NavigationStack {
            switch model.screen {
            case .home: HomeView()
            case .scan: ScanView()
            case .typeCode: CodeEntryView()
            case .enroll(let payload, let info): EnrollView(payload: payload, info: info)
            case .approve(let payload, let context): ApproveView(payload: payload, context: context)
            case .message(let text, let offer):
                VStack(spacing: 24) {
                    Text(text).font(.title3).multilineTextAlignment(.center)
                    if case .reEnroll = offer {
                        Button("登録を削除して再登録する", role: .destructive) {
                            model.unenroll()
                            model.screen = .scan
                        }
                    }
                    Button("ホームへ") { model.screen = .home }.buttonStyle(.borderedProminent)
                }.padding()
            }
        }
    }
}

struct HomeView: View {
    @EnvironmentObject var model: AppModel
    @Environment(\.scenePhase) private var scenePhase

    var body: some View {
        List {
            Section {
                if let e = model.enrollment {
                    Text("\(e.practitionerName) (\(e.practitionerRole))").font(.headline)
                    Text("サーバー: \(e.serverOrigin)").font(.footnote)
                } else {
                    Text("この端末は未登録です。管理者から受け取った登録用QRコードを読み取ってください。")
                }
                Button("QRコードを読み取る") { model.screen = .scan }
                // When the camera cannot read the EHR's QR: type the code shown beside it.
                if model.enrollment != nil { Button("コードを入力する") { model.screen = .typeCode } }
            }
            if model.enrollment != nil {
                Section("有効な認証") {
                    if model.grants.isEmpty { Text("なし") }
                    if let problem = model.signaturesProblem { Text(problem).font(.footnote) }
                    ForEach(model.grants, id: \.id) { g in
                        VStack(alignment: .leading, spacing: 6) {
                            Text("\(g.facilityName) / \(g.terminalName)").font(.headline)
                            Text("\(g.createdAt.formatted()) 〜 \(g.expiresAt.formatted())").font(.footnote)
                            Text("署名 \(g.signaturesMade) 回").font(.footnote)
                            SignatureList(entries: model.signaturesUnder(g))
                            // Borderless: in a List row only the button itself ends the grant.
                            Button("この認証を終了", role: .destructive) { model.end(grant: g) }
                                .buttonStyle(.borderless)
                        }
                        .swipeActions { Button("終了", role: .destructive) { model.end(grant: g) } }
                    }
                    Button("すべての認証を終了する", role: .destructive) { model.endAll() }
                }
                Section {
                    Button("この端末の登録を削除する", role: .destructive) { model.unenroll() }
                }
            }
        }
        .navigationTitle("Shomei 署名認証")
        .onAppear {
            model.refreshGrants()
            model.startFollowingSignatures()
        }
        .onDisappear { model.stopFollowingSignatures() }
        .onChange(of: scenePhase) { phase in
            if phase == .active { model.startFollowingSignatures() } else { model.stopFollowingSignatures() }
        }
    }
}

/// Today's signatures under one grant (issue 14), newest first, times in the phone's zone.
struct SignatureList: View {
    let entries: [SignatureEntry]
    static let shown = 50

    var body: some View {
        if entries.isEmpty {
            Text("本日の署名はありません").font(.caption).foregroundStyle(.secondary)
        } else {
            ForEach(entries.prefix(Self.shown), id: \.seq) { e in
                let line = AppModel.signatureLine(e)
                VStack(alignment: .leading) {
                    Text("\(line.time)  \(line.who)").font(.caption).bold()
                    Text(line.what).font(.caption.monospaced())
                }
            }
            if entries.count > Self.shown {
                Text("ほか \(entries.count - Self.shown) 件").font(.caption).foregroundStyle(.secondary)
            }
        }
    }
}

struct ScanView: View {
    @EnvironmentObject var model: AppModel
    @Environment(\.openURL) private var openURL
    @State private var scanner: QRScanner?
    @State private var problem: String?
    @State private var denied = false

    var body: some View {
        ZStack(alignment: .top) {
            if let scanner { CameraPreview(session: scanner.session).ignoresSafeArea() }
            VStack {
                Text(problem ?? model.scanNotice ?? "EHR画面のQRコードを写してください")
                    .padding().background(.thinMaterial).clipShape(Capsule())
                if denied, let settings = URL(string: UIApplication.openSettingsURLString) {
                    // iOS asks for the camera once; after a denial only the Settings app can change it.
                    Button("設定を開く") { openURL(settings) }.buttonStyle(.borderedProminent)
                }
                // Beside the scanner: when the camera cannot read the screen, type the code instead.
                if model.enrollment != nil {
                    Button("読み取れない場合: コードを入力") { model.screen = .typeCode }
                        .buttonStyle(.bordered).background(.thinMaterial)
                }
            }.padding()
        }
        .toolbar { Button("閉じる") { model.screen = .home } }
        .task { await startCamera() }
        .onDisappear {
            scanner?.stop()
            model.scanNotice = nil
        }
    }

    private func startCamera() async {
        guard await AVCaptureDevice.requestAccess(for: .video) else {
            problem = "QRコードの読み取りにはカメラの許可が必要です。設定でカメラを許可してください。"
            denied = true
            return
        }
        let s = QRScanner { scanner, result in
            Task { @MainActor in
                if !model.handle(result) {
                    // Expired, broken or foreign code: keep scanning, give the user time to
                    // read the notice (and refresh the EHR screen) before the next report.
                    try? await Task.sleep(nanoseconds: 1_500_000_000)
                    scanner.resume()
                }
            }
        }
        do {
            try s.configure()
            scanner = s
            s.start()
        } catch {
            problem = "カメラを開始できません: \(error.localizedDescription)"
        }
    }
}

struct CameraPreview: UIViewRepresentable {
    let session: AVCaptureSession

    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer } // swiftlint:disable:this force_cast
    }

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = session
        view.previewLayer.videoGravity = .resizeAspectFill
        return view
    }

    func updateUIView(_ uiView: PreviewView, context: Context) {}
}

struct EnrollView: View {
    @EnvironmentObject var model: AppModel
    let payload: String
    let info: PayloadInfo
    @State private var password = ""
    @State private var deviceName = UIDevice.current.name

    var body: some View {
        Form {
            Section("登録先") {
                Text(info.origin).font(.headline)
                Text("有効期限: \(info.expiresAt.formatted())")
            }
            Section("アクティベーションパスワード") { SecureField("パスワード", text: $password) }
            Section("端末名") { TextField("端末名", text: $deviceName) }
            Button("登録する") { model.enroll(payload: payload, info: info, password: password, deviceName: deviceName) }
                .disabled(password.isEmpty || model.busy)
        }
        .navigationTitle("端末の登録")
    }
}

/// The typed-code fallback's entry (docs/protocol.md §4.6): the 8-letter code the EHR shows
/// beside its QR. A typo is refused by core before anything is sent; the notice names it.
struct CodeEntryView: View {
    @EnvironmentObject var model: AppModel
    @State private var typed = ""
    @FocusState private var focused: Bool

    var body: some View {
        Form {
            Section {
                Text("EHR画面のQRコードの横に表示されている8文字のコード（例: BCDF-GHJK）を入力してください。")
                Text("目の前のEHR画面に表示されたコードだけを入力してください。電話やメッセージで伝えられたコードは絶対に入力しないでください。")
                    .bold()
            }
            Section("コード") {
                TextField("BCDF-GHJK", text: $typed)
                    .font(.title.monospaced())
                    .textInputAutocapitalization(.characters)
                    .autocorrectionDisabled()
                    .keyboardType(.asciiCapable)
                    .focused($focused)
                    .onSubmit { model.submitCode(typed) }
                if let notice = model.codeNotice { Text(notice).foregroundStyle(.red) }
            }
            Button("次へ") { model.submitCode(typed) }
                .disabled(typed.isEmpty || model.busy)
            Button("QRコードを読み取る") { model.screen = .scan }
        }
        .navigationTitle("コードを入力")
        .toolbar { Button("閉じる") { model.screen = .home } }
        .onAppear { focused = true }
        .onDisappear { model.codeNotice = nil }
    }
}

struct ApproveView: View {
    @EnvironmentObject var model: AppModel
    let payload: String
    let context: LoginContext?

    var body: some View {
        if let ctx = context {
            VStack(alignment: .leading, spacing: 12) {
                if model.approvingTypedCode {
                    Text("入力したコードのログイン要求です。目の前のEHR画面の内容と一致することを確認してください。")
                        .font(.footnote)
                }
                Text("医療機関: \(ctx.facilityName)").font(.title3).bold()
                Text("端末: \(ctx.terminalName)").font(.title3).bold()
                Text("要求時刻: \(ctx.requestedAt.formatted(date: .abbreviated, time: .standard))")
                Text("有効期限: \(ctx.expiresAt.formatted(date: .omitted, time: .standard))")
                Text("EHR画面に表示されている番号を選んでください。一致しない場合は拒否してください。")
                    .padding(.top)
                HStack {
                    // Vec<u8> arrives as Data; each byte is one two-digit choice.
                    ForEach(Array(ctx.numberChoices), id: \.self) { n in
                        Button(String(n)) {
                            model.decide(payload: payload, context: ctx, approve: true, number: n)
                        }
                        .font(.largeTitle).buttonStyle(.borderedProminent)
                    }
                }
                Button("心当たりがない（拒否）", role: .destructive) {
                    model.decide(payload: payload, context: ctx, approve: false, number: 0)
                }
                .padding(.top)
            }
            .padding()
            .disabled(model.busy)
            .navigationTitle("ログインの承認")
        } else {
            ProgressView("ログイン要求を確認しています…")
        }
    }
}
